"""Images for real: podman builds, a real registry on loopback receives, the command target.

The registry is Debian's ``docker-registry`` with htpasswd authentication on a free
loopback port, storage in a temporary directory. Nothing can be pulled here, so
the image is built on a base the test imports from a tarball.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ci.deploy import manifest
from tests.conftest import TEST_PASSWORD
from tests.deploy_helpers import Deployer, configured_url, environment, free_port, git, write_yaml

pytestmark = pytest.mark.skipif(
    not (shutil.which("podman") and shutil.which("docker-registry") and shutil.which("htpasswd")),
    reason="podman, docker-registry and htpasswd are needed: run scripts/setup-deploy",
)

USER = "deployer"
REGISTRY_PASSWORD = "r3g pa$$:w/rd"
BASE = "localhost/ci-kit-test-base:1"
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


@dataclass(frozen=True)
class Registry:
    address: str

    def get(self, path: str, accept: str = "*/*") -> tuple[bytes, dict[str, str]]:
        token = base64.b64encode(f"{USER}:{REGISTRY_PASSWORD}".encode()).decode()
        request = urllib.request.Request(
            f"http://{self.address}/v2/{path}",
            headers={"Authorization": f"Basic {token}", "Accept": accept},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
            return reply.read(), dict(reply.headers)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    root = tmp_path / "registry"
    root.mkdir()
    subprocess.run(
        ["htpasswd", "-iBc", str(root / "htpasswd"), USER],
        input=REGISTRY_PASSWORD, text=True, check=True, capture_output=True,
    )  # fmt: skip
    address = f"127.0.0.1:{free_port()}"
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": address, "secret": "test-only"},
        "auth": {"htpasswd": {"realm": "ci-kit-test", "path": str(root / "htpasswd")}},
    }
    write_yaml(root / "config.yml", config)
    with (root / "registry.log").open("wb") as log:
        process = subprocess.Popen(
            ["docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=log
        )
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://{address}/v2/", timeout=1)
        except urllib.error.HTTPError as error:
            if error.code == 401:  # up, and asking for credentials
                break
        except OSError:
            pass
        assert process.poll() is None, (root / "registry.log").read_text()
        assert time.monotonic() < deadline, "the registry did not start"
        time.sleep(0.1)
    yield Registry(address)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def podman_args(tmp_path: Path) -> Iterator[list[str]]:
    """Podman storage private to the test, holding a base image made from a tarball."""
    # podman refuses a runroot path over 50 characters; pytest's tmp_path is longer.
    runroot = tempfile.mkdtemp(prefix="ci-kit-", dir="/tmp")
    args = ["--root", str(tmp_path / "storage"), "--runroot", runroot]
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "os-release").write_text("NAME=ci-kit-test-base\n")
    with tarfile.open(tmp_path / "base.tar", "w") as tar:
        tar.add(rootfs, arcname=".")
    subprocess.run(
        ["podman", "--storage-driver", "vfs", *args, "import", str(tmp_path / "base.tar"), BASE],
        check=True, capture_output=True,
    )  # fmt: skip
    yield args
    shutil.rmtree(runroot, ignore_errors=True)


def test_build_push_and_roll_out_by_digest(
    tmp_path: Path, registry: Registry, podman_args: list[str], deploy_database: URL
) -> None:
    repo = tmp_path / "repo"
    git(tmp_path, "clone", "-q", str(Path(__file__).resolve().parents[1]), str(repo))
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
        assert {a.name.split("-")[0] for a in release.artifacts} == {"backend_sample"}
        assert {a.name.rsplit(".", 1)[-1] for a in release.artifacts} == {"whl", "gz"}

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
        assert labels["org.opencontainers.image.source"] == str(Path(__file__).resolve().parents[1])
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
