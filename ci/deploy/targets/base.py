"""What every target shares: the ``Target`` protocol, the app's settings, the one constructor.

All targets present the same operations to :mod:`ci.deploy.rollout` (prepare, migrate,
activate, a crash check, stop), so a deploy and its automatic rollback read the same
whatever the target. The helpers here (installing a release's venv, migrating with it)
are the steps more than one target takes the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import URL

from ci.deploy import manifest, venvs
from ci.deploy.config import DeployConfig, EnvironmentConfig
from ci.deploy.plan import Release, Step
from ci.deploy.shell import Shell
from ci_kit.dburl import render


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

    This is the only constructor: every target is built from the same four values
    (see :func:`ci.deploy.targets.make_target`) and derives the rest from them.
    ``settings`` is None when a target is built only to describe or plan
    (``--dry-run``, ``deploy.status``); a rollout resolves it first.
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
