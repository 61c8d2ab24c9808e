"""Images for real: podman builds, a real registry on loopback receives, the command target.

The registry is Debian's ``docker-registry`` with htpasswd authentication on a free
loopback port, storage in a temporary directory. Nothing can be pulled here, so
the image is built on a base the test imports from a tarball.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ci.deploy import manifest
from tests.automation.deploy_helpers import (
    BASE,
    MANIFEST_TYPES,
    REGISTRY_PASSWORD,
    USER,
    Deployer,
    Registry,
    configured_url,
    environment,
    free_port,
    git,
    registry_unavailable,
    write_yaml,
)
from tests.helpers.server import TEST_PASSWORD

pytestmark = pytest.mark.skipif(bool(registry_unavailable()), reason=str(registry_unavailable()))


@pytest.mark.slow
def test_build_push_and_roll_out_by_digest(
    tmp_path: Path, registry: Registry, podman_args: list[str], deploy_database: URL
) -> None:
    repo = tmp_path / "repo"
    git(tmp_path, "clone", "-q", str(Path(__file__).resolve().parents[2]), str(repo))
    commit = git(repo, "rev-parse", "HEAD")
    containerfile = tmp_path / "Containerfile"
    containerfile.write_text(f"FROM {BASE}\nARG WHEEL\nCOPY dist/${{WHEEL}} /app/\n")
    port = free_port()
    state = tmp_path / "app-state"
    state.mkdir()
    command = [
        sys.executable, str(Path(__file__).with_name("_start_app.py")), "{image}",
        str(repo / ".ci-kit" / "deploy" / "staging" / "venvs" / "{commit}"), str(port), str(state),
    ]  # fmt: skip
    repository = f"{registry.address}/finance-report"
    config = write_yaml(
        tmp_path / "deploy.yaml",
        {
            "deploy": {
                "project": str(repo),
                "state_root": str(tmp_path / "machine"),
                "image": {
                    "repository": repository,
                    "containerfile": str(containerfile),
                    "engine": "podman",
                    "engine_args": podman_args,
                    "tls_verify": False,
                    "username": USER,
                },
                "environments": {
                    "staging": environment(
                        port,
                        target="command",
                        command=command,
                        database_url=configured_url(deploy_database),
                        state=str(tmp_path / "shared-state"),
                    )
                },
            }
        },
    )
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CI_KIT_", "INVOKE_", "PYTEST_"))
    }
    environ["CI_KIT_REGISTRY_PASSWORD"] = REGISTRY_PASSWORD
    environ["CI_KIT_STAGING_DATABASE_PASSWORD"] = TEST_PASSWORD
    environ["REGISTRY_AUTH_FILE"] = str(tmp_path / "auth.json")
    run = Deployer(repo, config, environ)
    try:
        done = run("build")
        assert done.returncode == 0, done.stdout + done.stderr
        release = manifest.load(repo / ".ci-kit" / "releases", commit)
        assert release is not None
        assert release.image is not None
        assert release.image.digest is None
        # The sample's own distribution, not the kit's (the repository root's).
        built = {a.name for a in release.artifacts} - {"requirements.lock"}
        assert {name.split("-")[0] for name in built} == {"backend_sample"}
        assert {name.rsplit(".", 1)[-1] for name in built} == {"whl", "gz"}
        assert release.lock is not None, "its dependencies pinned, with hashes"

        done = run("push")
        assert done.returncode == 0, done.stdout + done.stderr
        pushed = manifest.load(repo / ".ci-kit" / "releases", commit)
        assert pushed is not None
        assert pushed.image is not None
        digest = pushed.image.digest
        assert digest is not None
        body, headers = registry.get(f"finance-report/manifests/{commit}", MANIFEST_TYPES)
        assert "sha256:" + hashlib.sha256(body).hexdigest() == digest
        assert headers.get("Docker-Content-Digest") == digest
        config_digest = json.loads(body)["config"]["digest"]
        image_config, _ = registry.get(f"finance-report/blobs/{config_digest}")
        labels = json.loads(image_config)["config"]["Labels"]
        assert labels["org.opencontainers.image.revision"] == commit
        assert labels["org.opencontainers.image.source"] == str(Path(__file__).resolve().parents[2])
        assert labels["org.opencontainers.image.created"] == release.created

        done = run("push")
        assert done.returncode == 0
        assert f"already pushed as {digest}" in done.stdout
        assert " push " not in done.stdout

        done = run("deploy.staging")
        assert done.returncode == 0, done.stdout + done.stderr
        assert (state / "image").read_text() == f"{repository}@{digest}"
        assert "smoke tests: 7 passed" in done.stdout
    finally:
        pid_file = state / "app.pid"
        if pid_file.is_file():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        transcript = "\n".join(run.transcript)
        print(transcript)
    for secret in (REGISTRY_PASSWORD, TEST_PASSWORD):
        assert secret not in transcript
