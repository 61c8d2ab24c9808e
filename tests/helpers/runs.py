"""Running the kit in a child process, and waiting on what runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import URL

from ci_kit.dburl import render


def environ_without_kit() -> dict[str, str]:
    """This process's environment less the kit's settings: an inner run configures its own."""
    return {key: value for key, value in os.environ.items() if not key.startswith("CI_KIT_")}


def run_kit(cwd: Path, *args: str, url: URL | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m ci_kit ARGS`` in ``cwd``, configured by nothing but ``url``, if given."""
    env = environ_without_kit()
    if url is not None:
        env["CI_KIT_DATABASE_URL"] = render(url)
    return subprocess.run(
        [sys.executable, "-m", "ci_kit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def running(pid: int) -> bool:
    """Alive and not a zombie: a reparented postmaster's zombie may linger unreaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(condition: Callable[[], bool], seconds: float = 30) -> None:
    """Poll ``condition`` until it holds; fail the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def wait_for(path: Path, process: subprocess.Popen[str], seconds: float = 60) -> None:
    """Poll for a file an inner run creates once it is where a test wants it (a test
    running, a migration under way); fail with the run's output if it ends first."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the inner run never got there"
        time.sleep(0.1)
