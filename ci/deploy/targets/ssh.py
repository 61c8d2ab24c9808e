"""The ``ssh`` target: the local target's release layout on another host, over Fabric.

``<remote_path>/releases/<sha>/`` holds the wheel, a venv and an ``app.env`` file
(mode 0600, uploaded over SFTP) with the app's settings: secrets reach the remote
processes through that file, never through a command line, which any user of the
remote host could read. ``current`` is switched with ``mv -T`` (an atomic rename),
uvicorn runs detached with its pid in ``app.pid``. Migrations and uvicorn run on
the remote host; the smoke tests run here, against the environment's URL.
"""

from __future__ import annotations

import contextlib
import io
import shlex
from pathlib import Path
from typing import Any

from ci.deploy import manifest, venvs
from ci.deploy.errors import CommandFailed
from ci.deploy.plan import Release, Step
from ci.deploy.remote import connect
from ci.deploy.shell import live_output, tail
from ci.deploy.targets.base import TargetBase

_APP = "backend_sample.app:create_app"


class SshTarget(TargetBase):
    """Releases under ``remote_path`` on ``ssh_host``, served by uvicorn there."""

    # Fabric's Connection, opened on first use, not when the target is built.
    _connection: Any = None

    @property
    def remote(self) -> str:
        """The environment's directory on the host."""
        assert self.env.remote_path is not None  # checked with the configuration
        return self.env.remote_path

    @property
    def local(self) -> Path:
        """Where this machine keeps the environment's smoke-test venvs."""
        return self.config.environment_dir(self.env.name)

    @property
    def connection(self) -> Any:
        if self._connection is None:
            assert self.env.ssh_host is not None  # checked with the configuration
            self._connection = connect(
                self.env.ssh_host, self.env.ssh_user, self.env.ssh_port, self.config
            )
        return self._connection

    def _run(self, command: str, *, check: bool = True, step: str | None = None) -> str:
        """One remote shell command, built from quoted parts; echoed, output masked.

        A ``step`` (install, migrate) streams its output as it comes, line by line,
        masked, with the step's name and elapsed time; queries stay quiet.
        """
        if self.shell.masker.leaks(command):
            raise CommandFailed("refusing to send a secret in a remote command line")
        self.shell.log(f"$ ssh {self.env.ssh_host} {self.shell.masker.mask(command)}")
        options = {"warn": True, "in_stream": False, "pty": False}
        with contextlib.ExitStack() as streaming:
            if step is None:
                result = self.connection.run(command, hide=True, **options)
            else:
                streams = streaming.enter_context(
                    live_output(self.shell.masker, self.shell.log, step)
                )
                result = self.connection.run(command, hide=False, **options, **streams)
        output = self.shell.masker.mask(result.stdout + result.stderr)
        if check and result.exited != 0:
            raise CommandFailed(
                f"on {self.env.ssh_host}: {command} exited {result.exited}: {tail(output)}"
            )
        return self.shell.masker.mask(result.stdout)

    def _release_dir(self, commit: str) -> str:
        return f"{self.remote}/releases/{commit}"

    def steps(self, commit: str, live: str | None) -> list[Step]:
        where = f"{self.env.ssh_user or ''}@{self.env.ssh_host}:{self._release_dir(commit)}"
        return [
            Step("upload", f"wheel and app.env (0600, over SFTP) to {where}"),
            Step(
                "install", f"venv with {self.env.remote_python} -m venv, pip install of the wheel"
            ),
            Step("migrate", f"alembic upgrade head on {self.env.database_display()}, remotely"),
            Step(
                "switch",
                (f"stop {live[:12]}, " if live else "")
                + f"mv -T current to releases/{commit[:12]}, start uvicorn on "
                f"{self.env.host}:{self.env.port} (pid in {self.remote}/app.pid)",
            ),
        ]

    def prepare(self, release: Release) -> None:
        directory = self._release_dir(release.commit)
        done = self._run(
            f"test -f {shlex.quote(directory)}/venv/.ci-kit-complete && echo yes", check=False
        )
        releases = self.config.releases_dir
        wheel = manifest.artifact_path(releases, release, release.wheel)
        lock = manifest.artifact_path(releases, release, release.lock) if release.lock else None
        self._run(f"mkdir -p {shlex.quote(directory)}")
        self._upload_env(release.commit)
        if done.strip() == "yes":
            self.shell.log(f"{directory}/venv is already installed")
        else:
            files = [wheel] if lock is None else [lock, wheel]
            names = " and ".join(path.name for path in files)
            self.shell.log(f"uploading {names} to {self.env.ssh_host}:{directory}")
            for path in files:
                self.connection.put(str(path), f"{directory}/{path.name}")
            venv = f"{directory}/venv"
            pip = [f"{venv}/bin/pip", "install", "--progress-bar", "off"]
            if lock is None:
                # The wheel alone: its base dependencies are the app's, and the smoke
                # tests (the smoke extra) run here, from the local venv below.
                installs = [[*pip, f"{directory}/{wheel.name}"]]
            else:
                # The release's pinned versions, hashes checked, as every venv of it
                # installs them (the smoke extra's included), then the wheel alone.
                installs = [
                    [*pip, "--require-hashes", "-r", f"{directory}/{lock.name}"],
                    [*pip, "--no-deps", f"{directory}/{wheel.name}"],
                ]
            commands = [[self.env.remote_python, "-m", "venv", venv], *installs]
            self._run(
                " && ".join(shlex.join(argv) for argv in commands)
                + f" && touch {shlex.quote(venv)}/.ci-kit-complete",
                step="install",
            )
        venvs.install(self.shell, self.smoke_venv(release), wheel, lock=lock)

    def _upload_env(self, commit: str) -> None:
        lines = [
            f"{key}={shlex.quote(value)}" for key, value in self.settings.environ(commit).items()
        ]
        path = f"{self._release_dir(commit)}/app.env"
        self.shell.log(f"uploading {path} (mode 0600)")
        self._run(f"umask 077 && : > {shlex.quote(path)}")
        self.connection.put(io.BytesIO(("\n".join(lines) + "\n").encode()), path)

    def _with_env(self, commit: str, argv: list[str]) -> str:
        directory = shlex.quote(self._release_dir(commit))
        return f"cd {directory} && set -a && . ./app.env && set +a && exec {shlex.join(argv)}"

    def migrate(self, release: Release) -> None:
        # The glob is left to the remote shell: the venv's Python version is its own.
        ini = "venv/lib/python3*/site-packages/backend_sample/alembic.ini"
        command = self._with_env(release.commit, ["venv/bin/python", "-m", "alembic"])
        self._run(f"{command} -c {ini} upgrade head", step="migrate")

    def activate(self, release: Release) -> None:
        self.stop()
        remote = shlex.quote(self.remote)
        self._run(
            f"cd {remote} && ln -sfn releases/{release.commit} current.tmp "
            "&& mv -T current.tmp current"
        )
        serve = [
            f"{self._release_dir(release.commit)}/venv/bin/python", "-m", "uvicorn", _APP,
            "--factory", "--host", self.env.host, "--port", str(self.env.port),
        ]  # fmt: skip
        inner = self._with_env(release.commit, serve)
        log = shlex.quote(f"{self._release_dir(release.commit)}/app.log")
        self._run(
            f"cd {remote} && (setsid sh -c {shlex.quote(inner)} > {log} 2>&1 < /dev/null & "
            f"echo $! > app.pid)"
        )

    def failure(self) -> str | None:
        remote = shlex.quote(self.remote)
        alive = self._run(f"kill -0 $(cat {remote}/app.pid) 2>/dev/null && echo up", check=False)
        if alive.strip() == "up":
            return None
        log = self._run(f"tail -n 3 {remote}/current/app.log", check=False)
        return f"the app exited on {self.env.ssh_host}: {tail(log, 3)}"

    def smoke_venv(self, release: Release) -> Path:
        return self.local / "venvs" / release.commit

    def stop(self) -> str:
        remote = shlex.quote(self.remote)
        out = self._run(
            f"pid=$(cat {remote}/app.pid 2>/dev/null) && kill $pid 2>/dev/null && {{ "
            # Up to 15 s for a clean exit, then SIGKILL: a stop never hangs.
            "for _ in $(seq 150); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done; "
            f"kill -9 $pid 2>/dev/null; echo stopped; }}; rm -f {remote}/app.pid",
            check=False,
        )
        return (
            f"stopped the app on {self.env.ssh_host}" if "stopped" in out else "nothing was running"
        )

    def describe(self) -> str:
        current = self._run(f"readlink {shlex.quote(self.remote)}/current", check=False).strip()
        return f"ssh {self.env.ssh_host}: current -> {current or 'nothing'}"
