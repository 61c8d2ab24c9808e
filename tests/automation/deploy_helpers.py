"""Shared pieces of the deploy tests: configurations, git repositories, free ports."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

REPO = Path(__file__).resolve().parents[2]
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
        # Ample for a healthy start on a loaded machine; a broken release the target
        # cannot see die (the command target) waits all of it before rolling back.
        "health_timeout": 15,
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


SSHD = Path("/usr/sbin/sshd")


def sshd_unavailable() -> str | None:
    """Why a real sshd cannot run here, or None when it can."""
    if not (SSHD.is_file() and shutil.which("ssh-keygen") and os.geteuid() == 0):
        return (
            "needs openssh-server (scripts/setup-deploy) and root, for sshd's privilege separation"
        )
    return None


@dataclass(frozen=True)
class Sshd:
    """A running loopback sshd: its port, the client key it accepts, its host key line."""

    port: int
    key: Path
    known_hosts: str


@contextmanager
def running_sshd(root: Path) -> Iterator[Sshd]:
    """An sshd on a free loopback port accepting one generated ed25519 key, under ``root``."""

    def keygen(path: Path) -> None:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
            check=True, capture_output=True,
        )  # fmt: skip

    root.mkdir(parents=True)
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
    host_key = " ".join((root / "host_key.pub").read_text().split()[:2])
    with (root / "sshd.log").open("wb") as log:
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(root / "sshd_config")], stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 15
            while "Server listening" not in (root / "sshd.log").read_text():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not start: {(root / 'sshd.log').read_text()}")
                time.sleep(0.05)
            yield Sshd(port, root / "id", f"[127.0.0.1]:{port} {host_key}")
        finally:
            process.terminate()
            process.wait(timeout=10)


MIGRATION_B = '''"""Deploy probe: a table only release B and later have."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("deploy_probe", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("deploy_probe")
'''


def three_releases(repo: Path) -> tuple[str, str, str]:
    """Commits A (the repository as is), B (a new migration, a changed ``/healthz``)
    and C (an app that cannot start) in ``repo``; their SHAs."""
    commit_a = git(repo, "rev-parse", "HEAD")
    migrations = repo / "backend_sample" / "migrations" / "versions"
    (migrations / "0013_deploy_probe.py").write_text(MIGRATION_B)
    health = repo / "backend_sample" / "api" / "health.py"
    health.write_text(
        health.read_text().replace(
            'return JSONResponse({"status": "ok", "commit": commit})',
            'return JSONResponse({"status": "ok", "commit": commit, "release": "B"})',
        )
    )
    commit_b = commit_all(repo, "B: a new migration and a changed /healthz")
    app = repo / "backend_sample" / "app.py"
    app.write_text(
        app.read_text().replace(
            '    """Build the FastAPI app for the given (or environment) settings."""\n',
            '    """Build the FastAPI app for the given (or environment) settings."""\n'
            '    raise RuntimeError("release C cannot start")\n',
        )
    )
    commit_c = commit_all(repo, "C: an app that cannot start")
    return commit_a, commit_b, commit_c


def registry_unavailable() -> str | None:
    """Why a real registry and podman cannot run here, or None when they can."""
    if not (
        shutil.which("podman") and shutil.which("docker-registry") and shutil.which("htpasswd")
    ):
        return "podman, docker-registry and htpasswd are needed: run scripts/setup-deploy"
    return None


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
