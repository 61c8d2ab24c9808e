"""Fixtures of the automation's tests: real sshd, registry and podman storage, a database.

Beside the tests of ``ci/`` (deploy, sessions, workflows) that use them, not in
the library's conftest: the library's tests never start an sshd or a registry.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ci_kit.dburl import with_database
from tests.automation.deploy_helpers import (
    BASE,
    REGISTRY_PASSWORD,
    USER,
    Registry,
    Sshd,
    free_port,
    registry_unavailable,
    running_sshd,
    sshd_unavailable,
    write_yaml,
)
from tests.helpers.server import create_unmarked


@pytest.fixture
def deploy_database(server_url: URL, base_name: str) -> URL:
    """An empty database for a deploy test, password in the URL; ``base_name`` drops it."""
    create_unmarked(server_url, base_name)
    return with_database(server_url, base_name)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A real sshd on loopback accepting one generated key (see ``running_sshd``)."""
    if reason := sshd_unavailable():
        pytest.skip(reason)
    with running_sshd(tmp_path / "sshd") as server:
        (tmp_path / "known_hosts").write_text(server.known_hosts + "\n")
        yield server


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """A real OCI registry (docker-registry) on loopback, htpasswd authentication."""
    if reason := registry_unavailable():
        pytest.skip(reason)
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
    if reason := registry_unavailable():
        pytest.skip(reason)
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
