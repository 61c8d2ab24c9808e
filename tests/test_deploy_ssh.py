"""The ssh target against a real sshd on loopback, with keys the test generates."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.conftest import TEST_PASSWORD
from tests.deploy_helpers import (
    REPO,
    Deployer,
    configured_url,
    environment,
    free_port,
    git,
    write_yaml,
)

SSHD = Path("/usr/sbin/sshd")
pytestmark = pytest.mark.skipif(
    not (SSHD.is_file() and shutil.which("ssh-keygen") and os.geteuid() == 0),
    reason="needs openssh-server (scripts/setup-deploy) and root, for sshd's privilege separation",
)


def keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An sshd on a free loopback port accepting one generated key; (port, key file)."""
    root = tmp_path / "sshd"
    root.mkdir()
    keygen(root / "host_key")
    keygen(root / "id")
    (root / "authorized_keys").write_text((root / "id.pub").read_text())
    port = free_port()
    (root / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {root / 'host_key'}",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                f"PidFile {root / 'sshd.pid'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "UsePAM no",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    log = (root / "sshd.log").open("wb")
    process = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(root / "sshd_config")], stdout=log, stderr=log
    )
    deadline = time.monotonic() + 15
    while "Server listening" not in (root / "sshd.log").read_text():
        assert process.poll() is None, (root / "sshd.log").read_text()
        assert time.monotonic() < deadline, "sshd did not start"
        time.sleep(0.05)
    yield port, root / "id"
    process.terminate()
    process.wait(timeout=10)
    log.close()


def test_ssh_target_deploys_the_release_layout_remotely(
    tmp_path: Path, sshd: tuple[int, Path], deploy_database: URL
) -> None:
    ssh_port, key = sshd
    repo = tmp_path / "repo"
    git(tmp_path, "clone", "-q", str(REPO), str(repo))
    commit = git(repo, "rev-parse", "HEAD")
    remote = tmp_path / "remote"
    port = free_port()
    config = write_yaml(
        tmp_path / "deploy.yaml",
        {
            "deploy": {
                "project": str(repo),
                "environments": {
                    "staging": environment(
                        port,
                        target="ssh",
                        ssh_host="127.0.0.1",
                        ssh_port=ssh_port,
                        ssh_user="root",
                        remote_path=str(remote),
                        remote_python=sys.executable,
                        database_url=configured_url(deploy_database),
                    )
                },
            }
        },
    )
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("CI_KIT_", "INVOKE_", "PYTEST_"))
    }
    environ["CI_KIT_STAGING_DATABASE_PASSWORD"] = TEST_PASSWORD
    environ["CI_KIT_SSH_KEY_FILE"] = str(key)
    run = Deployer(repo, config, environ)
    try:
        done = run("deploy.staging")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "smoke tests: 7 passed" in done.stdout
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            assert json.loads(reply.read()) == {"status": "ok", "commit": commit}
        assert (remote / "current").readlink() == Path("releases") / commit
        env_file = remote / "releases" / commit / "app.env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        pid = int((remote / "app.pid").read_text())
        assert TEST_PASSWORD not in Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        done = run("deploy.status")
        assert f"current -> releases/{commit}" in done.stdout
    finally:
        stopped = run("deploy.stop")
        transcript = "\n".join(run.transcript)
        print(transcript)
    assert stopped.returncode == 0
    assert not (remote / "app.pid").exists()
    assert TEST_PASSWORD not in transcript
