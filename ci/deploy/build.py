"""``invoke build``: the wheel and sdist of one commit, its pinned dependencies, its image,
and its manifest."""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from ci.deploy import manifest, venvs
from ci.deploy.config import DeployConfig
from ci.deploy.errors import CommandFailed, DeployConfigError
from ci.deploy.plan import LOCK_NAME, Artifact, Release
from ci.deploy.registry import build_image
from ci.deploy.shell import Shell
from ci.deploy.source import check_clean, export, origin_url


def build_release(
    shell: Shell,
    config: DeployConfig,
    commit: str,
    *,
    allow_dirty: bool = False,
    image: bool = True,
    rebuild: bool = False,
) -> Release:
    """Build ``commit`` (already resolved to a SHA) unless its release exists; its manifest.

    The artifacts come from ``git archive`` of the commit, never from the work tree,
    so the wheel is exactly the commit whatever else lies around. What is built is
    the commit's ``build.directory`` (``backend_sample/``, the sample's own
    distribution), not the repository root, which ships the kit. Its dependencies
    are resolved here, once, into ``requirements.lock`` (see :func:`_lock`), an
    artifact like the wheel: every venv of the release installs those versions.
    """
    if not allow_dirty:
        check_clean(shell, config.root)
    releases = config.releases_dir
    existing = manifest.load(releases, commit)
    if existing is not None and not rebuild:
        manifest.verify(releases, existing)
        path = manifest.manifest_path(releases, commit)
        shell.log(f"release {existing.short} is already built ({path})")
        if image and config.image.repository and existing.image is None:
            existing = _with_image(shell, config, existing)
            manifest.save(releases, existing)
        return existing
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    source_url = origin_url(shell, config.root)
    dist = manifest.dist_dir(releases, commit)
    with tempfile.TemporaryDirectory(prefix="ci-kit-build-") as work:
        source = export(shell, config.root, commit, Path(work))
        project = _project(source, config.build.directory, commit)
        out = Path(work) / "dist"
        argv: list[str | Path] = [sys.executable, "-m", "build", "--outdir", out]
        if not config.build.isolation:
            argv.append("--no-isolation")
        shell.run([*argv, project], step="build")
        built = sorted(out.iterdir())
        wheel = next((path for path in built if path.suffix == ".whl"), None)
        if wheel is None:
            raise CommandFailed(f"python -m build made no wheel for {commit[:12]}")
        if dist.exists():
            shutil.rmtree(dist)
        dist.mkdir(parents=True)
        artifacts = []
        for path in built:
            shutil.copy2(path, dist / path.name)
            artifacts.append(Artifact(path.name, manifest.sha256_of(dist / path.name)))
        _lock(shell, dist / wheel.name, dist / LOCK_NAME, Path(work), commit)
        artifacts.append(Artifact(LOCK_NAME, manifest.sha256_of(dist / LOCK_NAME)))
    release = Release(commit=commit, created=created, source=source_url, artifacts=tuple(artifacts))
    if image and config.image.repository:
        release = _with_image(shell, config, release)
    path = manifest.save(releases, release)
    shell.log(f"built release {release.short}: {', '.join(a.name for a in artifacts)}; {path}")
    return release


def _lock(shell: Shell, wheel: Path, lock: Path, work: Path, commit: str) -> None:
    """Pin ``wheel``'s dependencies, its smoke extra's included, with their hashes, in ``lock``.

    Resolved for this interpreter's Python version, the one the release venvs are
    made with. The wheel itself is left out (``--no-emit-package``): a path on this
    machine is no requirement for another, and the wheel is an artifact of its own,
    installed after the lock with ``--no-deps``. uv does the resolving, since pip
    cannot write hashes for every file of a version; without uv, no release.
    """
    uv = venvs.uv_binary()
    if uv is None:
        raise DeployConfigError(
            "pinning a release's dependencies needs uv, found neither beside "
            f"{sys.executable} nor on PATH; install the deploy group: pip install --group deploy"
        )
    name = venvs.dist_name(wheel)
    requirements = work / "requirements.in"
    requirements.write_text(f"{name}[{venvs.SMOKE_EXTRA}] @ {wheel.resolve().as_uri()}\n")
    shell.run(
        [
            uv, "pip", "compile", "--quiet", "--generate-hashes",
            "--python-version", f"{sys.version_info.major}.{sys.version_info.minor}",
            "--no-emit-package", name,
            "--custom-compile-command", f"invoke build --commit {commit}",
            "--output-file", lock, requirements,
        ],
        step="lock",
    )  # fmt: skip


def _project(source: Path, directory: str, commit: str) -> Path:
    """The exported commit's distribution to build; refuse a commit that has none there."""
    project = source / directory
    if not (project / "pyproject.toml").is_file():
        raise DeployConfigError(
            f"commit {commit[:12]} has no {directory}/pyproject.toml to build; deploy a commit "
            "where the sample is its own distribution, or set deploy.build.directory"
        )
    return project


def _with_image(shell: Shell, config: DeployConfig, release: Release) -> Release:
    with tempfile.TemporaryDirectory(prefix="ci-kit-image-") as work:
        source = export(shell, config.root, release.commit, Path(work))
        shutil.copytree(manifest.dist_dir(config.releases_dir, release.commit), source / "dist")
        return release.with_image(build_image(shell, config, release, source))
