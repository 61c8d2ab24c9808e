"""The ``command`` target: the configured rollout command, given the release's image by digest.

The platform the command drives runs the app; this machine keeps a venv of each
release for its migrations and smoke tests.
"""

from __future__ import annotations

from pathlib import Path

from ci.deploy.errors import CommandFailed, DeployError
from ci.deploy.plan import Release, Step, format_command
from ci.deploy.targets.base import TargetBase, install_release, migrate_with


class CommandTarget(TargetBase):
    """A rollout command from the configuration, given the image by digest.

    ``{image}`` (``repo@sha256:...``), ``{commit}`` and ``{environment}`` are filled
    in each argument; the command also gets ``IMAGE``, ``APP_COMMIT``,
    ``DATABASE_URL`` and ``ADMIN_TOKEN`` in its environment to pass on. Migrations
    run from here, from a venv of the release, before the command.
    """

    @property
    def root(self) -> Path:
        return self.config.environment_dir(self.env.name)

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
