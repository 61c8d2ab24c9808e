"""Shared pieces of the deploy tests: configurations, git repositories, free ports."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin"


def free_port() -> int:
    """A port nobody listens on now (the kernel's pick), on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def git(cwd: Path, *args: str) -> str:
    environ = {
        **os.environ,
        "GIT_AUTHOR_NAME": "ci-kit tests",
        "GIT_AUTHOR_EMAIL": "tests@ci-kit.invalid",
        "GIT_COMMITTER_NAME": "ci-kit tests",
        "GIT_COMMITTER_EMAIL": "tests@ci-kit.invalid",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=environ, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def environment(port: int, **extra: Any) -> dict[str, Any]:
    """One environment's settings on a loopback port."""
    return {
        "target": "local",
        "host": "127.0.0.1",
        "port": port,
        "base_url": f"http://127.0.0.1:{port}",
        "health_timeout": 30,
        **extra,
    }


def configured_url(url: URL) -> str:
    """The database URL as a deploy configuration holds it: no password (that comes from
    CI_KIT_<ENV>_DATABASE_PASSWORD), the plain ``postgresql`` scheme."""
    return URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
    ).render_as_string(hide_password=False)


def write_yaml(path: Path, data: Mapping[str, Any]) -> Path:
    """A runtime config file for ``invoke -f`` (JSON is valid YAML)."""
    import json

    path.write_text(json.dumps(data, indent=2))
    return path


class Deployer:
    """Runs ``invoke`` in the clone as a person would, keeping every line it printed.

    The tasks are this work tree's (``--search-root REPO``), not the clone's committed
    ones, so the runtime file must set ``deploy.project`` to the clone: the tasks
    deploy the directory of the ``tasks.py`` invoke loaded unless told otherwise.
    """

    def __init__(self, repo: Path, config: Path, environ: dict[str, str]) -> None:
        self.repo = repo
        self.config = config
        self.environ = environ
        self.transcript: list[str] = []

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(VENV_BIN / "invoke"), "--search-root", str(REPO), "-f", str(self.config), *args]
        started = time.perf_counter()
        done = subprocess.run(
            argv, cwd=self.repo, env=self.environ, capture_output=True, text=True, check=False
        )
        took = time.perf_counter() - started
        self.transcript += [f"# invoke {' '.join(args)}: exit {done.returncode}, {took:.1f} s"]
        self.transcript += [done.stdout, done.stderr]
        return done
