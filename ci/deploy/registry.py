"""OCI images: build one per release with podman or docker, push it, record its digest.

Podman runs daemonless with ``--storage-driver vfs`` and ``--isolation chroot``,
which work unprivileged and inside containers; docker is used when podman is
absent. The registry password goes to ``login --password-stdin``, never argv.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from ci.deploy.config import DeployConfig, ImageConfig
from ci.deploy.errors import DeployConfigError, RegistryError
from ci.deploy.plan import Image, Release
from ci.deploy.shell import Shell

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def engine_argv(image: ImageConfig) -> list[str]:
    """The engine's command with its global options, e.g. ``podman --storage-driver vfs``."""
    engine = image.engine
    if engine == "auto":
        engine = "podman" if shutil.which("podman") else "docker"
    if engine == "podman" and not shutil.which("podman"):
        raise DeployConfigError("podman is not installed; run scripts/setup-deploy")
    argv: list[str] = [engine]
    if engine == "podman" and "--storage-driver" not in image.engine_args:
        argv += ["--storage-driver", "vfs"]
    return [*argv, *image.engine_args]


def labels(release: Release) -> dict[str, str]:
    """The OCI annotations that tie an image to its commit."""
    return {
        "org.opencontainers.image.revision": release.commit,
        "org.opencontainers.image.source": release.source,
        "org.opencontainers.image.created": release.created,
        "org.opencontainers.image.title": "backend_sample",
    }


def build_argv(config: DeployConfig, release: Release, context: Path) -> list[str | Path]:
    """The image build command for ``release``, its context holding ``dist/``."""
    image = config.image
    assert image.repository, "no image repository configured"
    engine = engine_argv(image)
    argv: list[str | Path] = [*engine, "build"]
    if engine[0] == "podman":
        argv += ["--isolation", "chroot"]
    argv += ["-f", context / image.containerfile, "-t", f"{image.repository}:{release.commit}"]
    for key, value in labels(release).items():
        argv += ["--label", f"{key}={value}"]
    argv += ["--build-arg", f"WHEEL={release.wheel.name}", context]
    return argv


def build_image(shell: Shell, config: DeployConfig, release: Release, context: Path) -> Image:
    """Build and tag the release's image; its local id (the digest comes with the push)."""
    assert config.image.repository
    shell.run(build_argv(config, release, context), step="image")
    tag = f"{config.image.repository}:{release.commit}"
    image_id = shell.run(
        [*engine_argv(config.image), "image", "inspect", "--format", "{{.Id}}", tag]
    ).stdout.strip()
    return Image(repository=config.image.repository, tag=release.commit, image_id=image_id)


def push(shell: Shell, config: DeployConfig, release: Release) -> Image:
    """Log in, push the release's image, and return it with the registry's digest.

    A release whose manifest already records a digest in this repository is not
    pushed again: a tag names one commit, and the digest pins its content.
    """
    image = release.image
    if image is None:
        raise RegistryError(
            f"release {release.short} has no image; configure deploy.image.repository "
            f"and run invoke build --commit {release.commit}"
        )
    if image.digest and image.pushed_to == image.repository:
        shell.log(f"{image.repository}:{image.tag} is already pushed as {image.digest}")
        return image
    engine = engine_argv(config.image)
    tls = [] if config.image.tls_verify or engine[0] != "podman" else ["--tls-verify=false"]
    if config.image.username:
        if not config.registry_password:
            raise RegistryError(
                "deploy.image.username is set but CI_KIT_REGISTRY_PASSWORD is not; "
                "export the registry password in that variable"
            )
        registry = config.image.registry
        assert registry
        login = [*engine, "login", *tls, "--username", config.image.username]
        output = shell.run(
            [*login, "--password-stdin", registry], stdin=config.registry_password, check=False
        )
        if not output.ok:
            raise RegistryError(
                f"login to {registry} failed: {output.stderr.strip() or output.stdout.strip()}"
            )
    tag = f"{image.repository}:{image.tag}"
    with tempfile.TemporaryDirectory(prefix="ci-kit-push-") as work:
        digest_file = Path(work) / "digest"
        argv: list[str | Path] = [*engine, "push", *tls]
        if engine[0] == "podman":
            argv += ["--digestfile", digest_file]
        output = shell.run([*argv, tag], check=False)
        if not output.ok:
            raise RegistryError(f"push of {tag} failed: {output.stderr.strip()}")
        text = digest_file.read_text() if digest_file.is_file() else output.stdout
    found = _DIGEST.search(text)
    if found is None:
        raise RegistryError(f"the registry returned no digest for {tag}")
    pushed = Image(
        repository=image.repository,
        tag=image.tag,
        image_id=image.image_id,
        digest=found.group(0),
        pushed_to=image.repository,
    )
    shell.log(f"pushed {tag} as {pushed.reference}")
    return pushed
