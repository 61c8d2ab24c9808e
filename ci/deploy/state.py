"""Per-environment state on the deploying machine: the deploy lock and the history.

``<state>/deploy/<env>/history.json`` lists the commits that went live there,
healthy and smoke-tested, oldest first; the last is what is live, the one before
it is where ``deploy.rollback`` goes.
"""

from __future__ import annotations

import fcntl
import json
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from ci.deploy.errors import DeployLocked

_LOCK_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Entry:
    commit: str
    deployed_at: str
    how: str


def read_history(env_dir: Path) -> list[Entry]:
    path = env_dir / "history.json"
    if not path.is_file():
        return []
    return [Entry(**entry) for entry in json.loads(path.read_text())]


def write_history(env_dir: Path, entries: list[Entry]) -> None:
    env_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(env_dir / "history.json", json.dumps([asdict(e) for e in entries], indent=2))


def record(env_dir: Path, commit: str, how: str) -> None:
    entries = read_history(env_dir)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_history(env_dir, [*entries, Entry(commit, now, how)])


def live_commit(env_dir: Path) -> str | None:
    entries = read_history(env_dir)
    return entries[-1].commit if entries else None


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` in one step: readers see the old content or the new."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
    Path(tmp.name).chmod(mode)
    Path(tmp.name).replace(path)


def admin_token(env_dir: Path) -> str:
    """The environment's kept ``ADMIN_TOKEN`` (made once, mode 0600) when none is given."""
    path = env_dir / "admin-token"
    if path.is_file():
        return path.read_text().strip()
    env_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    write_atomic(path, token, mode=0o600)
    return token


@contextmanager
def deploy_lock(env_dir: Path, *, timeout: float, log: Callable[[str], None]) -> Iterator[None]:
    """Hold the environment's lock: two deploys to one environment never overlap.

    ``flock`` is released by the kernel when the process dies, so a killed deploy
    never leaves a stale lock behind.
    """
    env_dir.mkdir(parents=True, exist_ok=True)
    with (env_dir / "deploy.lock").open("a") as handle:
        deadline = time.monotonic() + timeout
        waiting = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DeployLocked(
                        f"another deploy to {env_dir.name} is running (lock {handle.name}); "
                        "wait for it to finish"
                    ) from None
                if not waiting:
                    log(f"waiting for another deploy to {env_dir.name} to finish")
                    waiting = True
                time.sleep(_LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
