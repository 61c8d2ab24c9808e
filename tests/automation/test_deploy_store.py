"""Where an environment's state lives: a directory, or a host over real SSH."""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ci.deploy.config import load_deploy_config
from ci.deploy.errors import DeployConfigError, DeployLocked
from ci.deploy.store import DirectoryStore, SshStore, Store, store_for
from tests.automation.deploy_helpers import REPO, Sshd


def test_a_second_deploy_to_one_environment_waits_for_the_lock(tmp_path: Path) -> None:
    lines: list[str] = []
    store = DirectoryStore(tmp_path / "staging")
    with (
        store.locked(timeout=1, log=lines.append),
        pytest.raises(DeployLocked, match="another deploy of this environment has held"),
        DirectoryStore(tmp_path / "staging").locked(timeout=0.3, log=lines.append),
    ):
        pass  # pragma: no cover
    assert lines == [f"waiting for another deploy holding {tmp_path / 'staging' / 'deploy.lock'}"]
    with store.locked(timeout=0.3, log=lines.append):
        pass  # free again once the first was released


def round_trip(store: Store) -> None:
    assert store.read("history.json") is None
    store.write("history.json", b"[1]")
    store.write("history.json", b"[1, 2]")
    assert store.read("history.json") == b"[1, 2]"
    store.write("kept-releases/abc/manifest.json", b"{}")
    assert store.read("kept-releases/abc/manifest.json") == b"{}"
    store.write("admin-token", b"t0ken", private=True)
    assert store.read("admin-token") == b"t0ken"


def test_a_directory_store_replaces_files_whole_and_keeps_secrets_private(tmp_path: Path) -> None:
    round_trip(DirectoryStore(tmp_path / "state"))
    assert stat.S_IMODE((tmp_path / "state" / "admin-token").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state" / "history.json").stat().st_mode) == 0o644
    assert sorted(path.name for path in (tmp_path / "state").iterdir()) == [
        "admin-token",
        "history.json",
        "kept-releases",
    ], "no temporary file left behind"


def config_for(tmp_path: Path, **staging: object) -> object:
    settings = {
        "state_root": str(tmp_path / "machine"),
        "environments": {"staging": {"port": 8801, **staging}},
    }
    return load_deploy_config(settings, {}, REPO)


def test_each_target_keeps_its_state_with_the_environment(tmp_path: Path) -> None:
    local = store_for(*_env(tmp_path))
    assert isinstance(local, DirectoryStore)
    assert local.root == tmp_path / "machine" / "backend_sample" / "environments" / "staging"
    ssh = store_for(*_env(tmp_path, target="ssh", ssh_host="h", remote_path="/srv/app"))
    assert isinstance(ssh, SshStore)
    assert ssh.where == "h:/srv/app/state"
    shared = store_for(*_env(tmp_path, target="command", command="true", state="/mnt/shared/st"))
    assert isinstance(shared, DirectoryStore)
    assert shared.root == Path("/mnt/shared/st")
    remote = store_for(
        *_env(tmp_path, target="command", command="true", state="ssh://ops@h:2222/var/st")
    )
    assert isinstance(remote, SshStore)
    assert remote.where == "h:/var/st"


def test_the_command_target_must_name_where_its_state_lives(tmp_path: Path) -> None:
    with pytest.raises(DeployConfigError, match="the command target needs a state location"):
        store_for(*_env(tmp_path, target="command", command="true"))


@pytest.mark.parametrize(
    ("state", "complaint"),
    [
        (".ci-kit/state", "must be an absolute directory or an ssh:// location"),
        ("ssh://host-without-path", "must look like ssh://"),
        ("ssh://h:port/x", r"state: the port in 'ssh://h:port/x' is not a number$"),
    ],
)
def test_a_state_location_is_checked_in_one_line(
    tmp_path: Path, state: str, complaint: str
) -> None:
    with pytest.raises(DeployConfigError, match=complaint):
        config_for(tmp_path, state=state)


def _env(tmp_path: Path, **staging: object) -> tuple[object, object]:
    config = config_for(tmp_path, **staging)
    return config, config.environment("staging")  # type: ignore[attr-defined]


HOLD_LOCK = """
import sys, time
from ci.deploy.config import load_deploy_config
from ci.deploy.store import store_for
settings = {"state_root": "/unused", "ssh_known_hosts": sys.argv[3], "environments": {
    "staging": {"port": 8801, "target": "command", "command": "true", "state": sys.argv[1]}}}
config = load_deploy_config(settings, {"CI_KIT_SSH_KEY_FILE": sys.argv[2]}, sys.path[0])
store = store_for(config, config.environment("staging"))
with store.locked(timeout=5, log=print):
    print("holding", flush=True)
    time.sleep(120)
"""


@pytest.mark.slow
def test_a_host_store_over_ssh_locks_across_runners_and_a_killed_holder_frees_it(
    tmp_path: Path, sshd: Sshd
) -> None:
    port, key = sshd.port, sshd.key
    location = f"ssh://root@127.0.0.1:{port}{tmp_path / 'host-state'}"
    settings = {
        "state_root": str(tmp_path / "machine"),
        "ssh_known_hosts": str(tmp_path / "known_hosts"),
        "environments": {
            "staging": {"port": 8801, "target": "command", "command": "true", "state": location}
        },
    }
    config = load_deploy_config(settings, {"CI_KIT_SSH_KEY_FILE": str(key)}, REPO)
    store = store_for(config, config.environment("staging"))
    round_trip(store)
    assert stat.S_IMODE((tmp_path / "host-state" / "admin-token").stat().st_mode) == 0o600

    argv = [sys.executable, "-c", HOLD_LOCK, location, str(key), str(tmp_path / "known_hosts")]
    with subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        lines: list[str] = []
        with pytest.raises(DeployLocked), store.locked(timeout=1, log=lines.append):
            pass  # pragma: no cover
        assert lines == [f"waiting for another deploy holding {store.where}/deploy.lock"]
        holder.send_signal(signal.SIGKILL)  # a runner cancelled mid-deploy
        holder.wait(timeout=30)
        started = time.monotonic()
        with store.locked(timeout=20, log=lines.append):
            waited = time.monotonic() - started
        assert waited < 15, "the lock died with its holder's session"
