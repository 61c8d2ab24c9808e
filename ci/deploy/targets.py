"""Where releases run: the ``local`` target (this machine) and the ``command`` target.

Both present the same operations to :mod:`ci.deploy.rollout` (prepare, migrate,
activate, a crash check, stop), so a deploy and its automatic rollback read the
same whatever the target.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Protocol

import psutil  # type: ignore[import-untyped]
from sqlalchemy.engine import URL

from ci.deploy import manifest, venvs
from ci.deploy.config import DeployConfig, EnvironmentConfig
from ci.deploy.errors import CommandFailed, DeployError
from ci.deploy.plan import Release, Step, format_command
from ci.deploy.shell import Shell, tail
from ci.deploy.store import local_environment_dir, write_atomic
from ci_kit.dburl import mask, render

_STOP_SECONDS = 15.0


class Target(Protocol):
    """What the rollout needs from a place releases run."""

    @property
    def settings(self) -> AppSettings: ...
    def steps(self, commit: str, live: str | None) -> list[Step]: ...
    def prepare(self, release: Release) -> None: ...
    def migrate(self, release: Release) -> None: ...
    def activate(self, release: Release) -> None: ...
    def failure(self) -> str | None: ...
    def smoke_venv(self, release: Release) -> Path: ...
    def stop(self) -> str: ...
    def describe(self) -> str: ...


class AppSettings:
    """The app's runtime settings for one environment; secrets resolved lazily, once."""

    def __init__(self, database: URL, admin_token: str) -> None:
        self.database = database
        self.admin_token = admin_token

    def environ(self, commit: str) -> dict[str, str]:
        return {
            "DATABASE_URL": render(self.database),
            "ADMIN_TOKEN": self.admin_token,
            "APP_COMMIT": commit,
        }


def install_release(shell: Shell, config: DeployConfig, release: Release, venv: Path) -> Path:
    """The release's venv: its wheel over exactly the dependency set its lock pinned."""
    releases = config.releases_dir
    wheel = manifest.artifact_path(releases, release, release.wheel)
    lock = manifest.artifact_path(releases, release, release.lock) if release.lock else None
    return venvs.install(shell, venv, wheel, lock=lock)


def migrate_with(shell: Shell, venv: Path, settings: AppSettings, commit: str, cwd: Path) -> None:
    """``alembic upgrade head`` with the release's own migrations, URL in the environment."""
    ini = venvs.site_packages(venv) / "backend_sample" / "alembic.ini"
    shell.run(
        [venv / "bin" / "python", "-m", "alembic", "-c", ini, "upgrade", "head"],
        env={"DATABASE_URL": render(settings.database)},
        cwd=cwd,
        step="migrate",
    )


class TargetBase:
    """What every target holds: the shell, the configuration, and the app settings.

    ``settings`` is None when a target is built only to describe or plan (``--dry-run``,
    ``deploy.status``); a rollout resolves it first.
    """

    def __init__(
        self,
        shell: Shell,
        config: DeployConfig,
        env: EnvironmentConfig,
        settings: AppSettings | None,
    ) -> None:
        self.shell = shell
        self.config = config
        self.env = env
        self._settings = settings

    @property
    def settings(self) -> AppSettings:
        assert self._settings is not None, "settings are resolved before a rollout"
        return self._settings


class LocalTarget(TargetBase):
    """Releases under ``<state>/deploy/<env>/releases/<sha>/``, served by uvicorn here."""

    def __init__(
        self,
        shell: Shell,
        config: DeployConfig,
        env: EnvironmentConfig,
        settings: AppSettings | None,
    ) -> None:
        super().__init__(shell, config, env, settings)
        # Outside the clone: the app outlives it, and every clone here must find it.
        self.root = local_environment_dir(config, env.name)
        self.releases = self.root / "releases"
        self.current = self.root / "current"
        self.pid_file = self.root / "app.pid"
        self._process: subprocess.Popen[bytes] | None = None

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


class CommandTarget(TargetBase):
    """A rollout command from the configuration, given the image by digest.

    ``{image}`` (``repo@sha256:...``), ``{commit}`` and ``{environment}`` are filled
    in each argument; the command also gets ``IMAGE``, ``APP_COMMIT``,
    ``DATABASE_URL`` and ``ADMIN_TOKEN`` in its environment to pass on. Migrations
    run from here, from a venv of the release, before the command.
    """

    def __init__(
        self,
        shell: Shell,
        config: DeployConfig,
        env: EnvironmentConfig,
        settings: AppSettings | None,
    ) -> None:
        super().__init__(shell, config, env, settings)
        self.root = config.environment_dir(env.name)

    def venv(self, commit: str) -> Path:
        return self.root / "venvs" / commit

    def argv(self, release: Release) -> list[str]:
        if release.image is None or not release.image.digest:
            raise DeployError(
                f"the command target deploys an image by digest, and release {release.short} "
                f"has none pushed; run: invoke push --commit {release.commit}"
            )
        fields = {
            "image": release.image.reference,
            "commit": release.commit,
            "environment": self.env.name,
        }
        return [part.format(**fields) for part in self.env.command]

    def steps(self, commit: str, live: str | None) -> list[Step]:
        fields = {"image": "<repository>@<digest>", "commit": commit, "environment": self.env.name}
        command = tuple(part.format(**fields) for part in self.env.command)
        return [
            Step(
                "install", f"virtual environment {self.venv(commit)} for migrations and smoke tests"
            ),
            Step("migrate", f"alembic upgrade head on {self.env.database_display()}"),
            Step("rollout", "run the configured command with the image by digest", command),
        ]

    def prepare(self, release: Release) -> None:
        self.argv(release)  # refuse early: no pushed image, no rollout
        self.venv(release.commit).parent.mkdir(parents=True, exist_ok=True)
        install_release(self.shell, self.config, release, self.venv(release.commit))

    def migrate(self, release: Release) -> None:
        migrate_with(
            self.shell, self.venv(release.commit), self.settings, release.commit, self.root
        )

    def activate(self, release: Release) -> None:
        assert release.image is not None
        environ = {**self.settings.environ(release.commit), "IMAGE": release.image.reference}
        try:
            self.shell.run(self.argv(release), env=environ, step="rollout")
        except CommandFailed as error:
            raise DeployError(f"the rollout command failed: {error}") from None

    def failure(self) -> str | None:
        return None

    def smoke_venv(self, release: Release) -> Path:
        return self.venv(release.commit)

    def stop(self) -> str:
        return "the command target has no stop; undo the rollout with your platform"

    def describe(self) -> str:
        return f"command: {format_command(self.env.command)}"


def make_target(
    shell: Shell, config: DeployConfig, env: EnvironmentConfig, settings: AppSettings | None
) -> Target:
    if env.target == "local":
        return LocalTarget(shell, config, env, settings)
    if env.target == "command":
        return CommandTarget(shell, config, env, settings)
    from ci.deploy.ssh import SshTarget

    return SshTarget(shell, config, env, settings)


def masked_database(settings: AppSettings) -> str:
    return mask(settings.database)


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
