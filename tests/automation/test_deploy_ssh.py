"""The ssh target against a real sshd on loopback, with keys the test generates."""

from __future__ import annotations

import json
import os
import stat
import sys
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ci.deploy.config import DeployConfig, load_deploy_config
from ci.deploy.errors import DeployConfigError
from ci.deploy.remote import connect
from tests.automation.deploy_helpers import (
    REPO,
    Deployer,
    Sshd,
    configured_url,
    environment,
    free_port,
    git,
    write_yaml,
)
from tests.helpers.server import TEST_PASSWORD


@pytest.mark.slow
def test_ssh_target_deploys_the_release_layout_remotely(
    tmp_path: Path, sshd: Sshd, deploy_database: URL
) -> None:
    ssh_port, key = sshd.port, sshd.key
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
                "state_root": str(tmp_path / "machine"),
                "ssh_known_hosts": str(tmp_path / "known_hosts"),
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


def test_only_a_host_whose_key_is_known_is_connected_to(tmp_path: Path, sshd: Sshd) -> None:
    """A runner has never seen the host: trusting the first key it is shown would hand
    its SSH key and the app's secrets to whoever answered."""

    def config(known_hosts: Path) -> DeployConfig:
        settings = {"state_root": str(tmp_path / "m"), "ssh_known_hosts": str(known_hosts)}
        return load_deploy_config(settings, {"CI_KIT_SSH_KEY_FILE": str(sshd.key)}, REPO)

    (tmp_path / "other_hosts").write_text("")
    with pytest.raises(DeployConfigError) as refused:
        connect("127.0.0.1", "root", sshd.port, config(tmp_path / "other_hosts"))
    assert str(refused.value) == (
        f"root@127.0.0.1:{sshd.port}'s host key is not in {tmp_path / 'other_hosts'}; add it "
        f"once checked: ssh-keyscan -p {sshd.port} 127.0.0.1 >> {tmp_path / 'other_hosts'} "
        "(or set deploy.ssh_known_hosts)"
    )
    connect("127.0.0.1", "root", sshd.port, config(tmp_path / "known_hosts")).close()
