"""The ``local`` target: releases on this machine, served by uvicorn here.

It owns the app's process: started detached with its pid on disk, told from a
recycled pid (psutil), stopped with a deadline and reaped.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import psutil

from ci.deploy.plan import Release, Step, format_command
from ci.deploy.shell import tail
from ci.deploy.store import local_environment_dir, write_atomic
from ci.deploy.targets.base import TargetBase, install_release, migrate_with

_STOP_SECONDS = 15.0


class LocalTarget(TargetBase):
    """Releases under ``<machine>/environments/<env>/releases/<sha>/``, served by uvicorn here."""

    # The app this deploy started, if any: it is waited for (reaped) when stopped.
    _process: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> Path:
        # Outside the clone: the app outlives it, and every clone here must find it.
        return local_environment_dir(self.config, self.env.name)

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def current(self) -> Path:
        return self.root / "current"

    @property
    def pid_file(self) -> Path:
        return self.root / "app.pid"

    def log_file(self, commit: str) -> Path:
        return self.releases / commit / "app.log"

    def venv(self, commit: str) -> Path:
        return self.releases / commit / "venv"

    def steps(self, commit: str, live: str | None) -> list[Step]:
        venv = self.venv(commit)
        python = str(venv / "bin" / "python")
        ini = f"{venv}/lib/python*/site-packages/backend_sample/alembic.ini"
        serve = tuple(self.serve_argv(commit))
        return [
            Step("install", f"virtual environment {venv} from the release's wheel"),
            Step(
                "migrate",
                f"alembic upgrade head on {self.env.database_display()} (DATABASE_URL in env)",
                (python, "-m", "alembic", "-c", ini, "upgrade", "head"),
            ),
            Step(
                "switch",
                (f"stop {live[:12]}, " if live else "")
                + f"point {self.current} at releases/{commit[:12]} (atomic rename), "
                f"start uvicorn, pid in {self.pid_file}",
                serve,
            ),
        ]

    def prepare(self, release: Release) -> None:
        self.releases.mkdir(parents=True, exist_ok=True)
        install_release(self.shell, self.config, release, self.venv(release.commit))

    def migrate(self, release: Release) -> None:
        migrate_with(
            self.shell,
            self.venv(release.commit),
            self.settings,
            release.commit,
            self.releases / release.commit,
        )

    def activate(self, release: Release) -> None:
        """Stop what runs, switch ``current`` atomically, start the release."""
        self.stop()
        link = self.root / f".current-{os.getpid()}"
        link.unlink(missing_ok=True)
        link.symlink_to(Path("releases") / release.commit)
        link.replace(self.current)
        self._start(release.commit)

    def serve_argv(self, commit: str) -> list[str]:
        """uvicorn from the release's venv, on the environment's loopback address and port."""
        python = self.venv(commit) / "bin" / "python"
        app = "backend_sample.app:create_app"
        host, port = self.env.host, str(self.env.port)
        return [str(python), "-m", "uvicorn", app, "--factory", "--host", host, "--port", port]

    def _start(self, commit: str) -> None:
        argv = self.serve_argv(commit)
        log_file = self.log_file(commit)
        self.shell.log(f"$ {format_command(argv)} &  (log: {log_file})")
        # A minimal environment: the app gets its settings, not the deployer's secrets.
        environ = {
            key: os.environ[key] for key in ("PATH", "LANG", "HOME", "TZ") if key in os.environ
        }
        environ.update(self.settings.environ(commit))
        with log_file.open("ab") as log:
            process = subprocess.Popen(
                argv,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.releases / commit,
                start_new_session=True,  # it outlives this deploy
            )
        self._process = process
        write_atomic(self.pid_file, f"{process.pid}\n")

    def failure(self) -> str | None:
        """Why the app cannot come up: its process exited (with its last log lines)."""
        if self._process is not None:
            if self._process.poll() is None:
                return None
        elif self.running_pid() is not None:
            return None
        if not self.current.is_symlink():
            return "the app is not running"
        log_file = self.log_file(self.current.readlink().name)
        text = log_file.read_text(errors="replace") if log_file.is_file() else ""
        return f"the app exited: {tail(self.shell.masker.mask(text), 3)}"

    def running_pid(self) -> int | None:
        """The pid of this environment's uvicorn, if it is running."""
        if not self.pid_file.is_file():
            return None
        pid = int(self.pid_file.read_text().strip() or 0)
        return pid if pid and _uvicorn(pid) is not None else None

    def smoke_venv(self, release: Release) -> Path:
        return self.venv(release.commit)

    def stop(self) -> str:
        pid = self.running_pid()
        process = _uvicorn(pid) if pid else None
        if pid is None or process is None:
            self.pid_file.unlink(missing_ok=True)
            return f"nothing was running for {self.env.name}"
        self.shell.log(f"stopping uvicorn (pid {pid})")
        _terminate(process)
        if self._process is not None and self._process.pid == pid:
            self._process.wait()
            self._process = None
        self.pid_file.unlink(missing_ok=True)
        return f"stopped uvicorn (pid {pid})"

    def describe(self) -> str:
        pid = self.running_pid()
        serving = str(self.current.readlink()) if self.current.is_symlink() else "nothing"
        state = f"uvicorn pid {pid}" if pid else "not running"
        return f"local: current -> {serving}; {state}"


def _uvicorn(pid: int) -> psutil.Process | None:
    """The uvicorn at ``pid`` if that pid still is one (not a zombie): a recycled pid,
    now someone else's process, is never signalled."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        cmdline = process.cmdline()
    except psutil.Error:
        return None
    # The command line reads empty for a moment after exec; that is no one else's.
    return process if not cmdline or any("uvicorn" in part for part in cmdline) else None


def _terminate(process: psutil.Process) -> None:
    """SIGTERM, wait for the exit with a deadline, SIGKILL if it would not go.

    psutil's wait reaps the process when it is this deploy's own child, so none is
    left a zombie, and polls it otherwise.
    """
    with contextlib.suppress(psutil.NoSuchProcess):
        process.terminate()
        try:
            process.wait(timeout=_STOP_SECONDS)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(timeout=_STOP_SECONDS)
