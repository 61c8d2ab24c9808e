"""A schema from an ``alembic.ini``: ``alembic upgrade head``, in-process.

Alembic is the user's dependency, not the kit's, so it is imported only when a
project's schema is an ``alembic.ini``.

Alembic resolves a relative ``script_location`` or ``version_locations`` (and an
``env.py`` opens its relative files) against the current directory, which is
wherever pytest was started. Every piece of Alembic work here runs with the ini's
directory as the current one, so ``migrations`` means what ``%(here)s/migrations``
means, as it does for ``alembic upgrade head`` run next to the ini.
"""

from __future__ import annotations

import contextlib
import logging.config
import os
from collections.abc import Iterator
from contextlib import chdir, contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from ci_kit.errors import SchemaNotInTemplate, SchemaSourceError, first_line

_ELSEWHERE_HINT = (
    " (if your env.py builds its own engine from the application's settings, it ignored "
    "the kit's connection: use config.attributes['connection'], README: Alembic env.py)"
)

# libpq's words for a connection that could not be opened, as opposed to one lost.
_OPENING_FAILED = ("connection failed", "could not connect", "could not translate host name")


@dataclass(frozen=True)
class AlembicSchema:
    """The history of the Alembic project configured by ``ini``, upgraded to head.

    ``quiet_logging`` keeps ``env.py``'s ``fileConfig`` from reconfiguring the
    logging of the pytest run (``alembic-logging = "quiet"``).
    """

    ini: Path
    quiet_logging: bool = True

    def describe(self) -> str:
        """The ini and the script directory it resolves to: what a run is built from."""
        try:
            scripts = self._script_directory()
        except SchemaSourceError:
            return f"Alembic ({self.ini})"
        return f"Alembic ({self.ini}, scripts in {scripts})"

    def fingerprint_parts(self) -> Iterator[bytes]:
        """Every file of the script directory: each migration and ``env.py``."""
        yield b"alembic"
        for path in self._files():
            yield str(path.relative_to(path.anchor)).encode()
            yield path.read_bytes()

    def build(self, connection: Connection) -> None:
        """Upgrade on the given connection (Alembic cookbook: "sharing a connection").

        It travels in ``config.attributes["connection"]``; ``sqlalchemy.url`` is set
        as well, %-escaped for ConfigParser, for ``env.py`` files that read it.
        """
        from alembic import command

        config = self._config()
        config.attributes["connection"] = connection
        url = connection.engine.url.render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        quiet = _logging_kept_out() if self.quiet_logging else contextlib.nullcontext()
        with quiet, chdir(self.ini.parent):
            command.upgrade(config, "head")

    def verify(self, connection: Connection) -> None:
        """The template must be at head: many ``env.py`` files migrate their own database."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        with chdir(self.ini.parent):
            heads = set(ScriptDirectory.from_config(self._config()).get_heads())
        current = set(MigrationContext.configure(connection).get_current_heads())
        connection.rollback()
        if current != heads:
            found = ", ".join(sorted(current)) or "no alembic_version"
            raise SchemaNotInTemplate(
                f"after alembic upgrade head, template {connection.engine.url.database!r} has "
                f"{found}, not head ({', '.join(sorted(heads))}): your env.py connected "
                "elsewhere; make it use config.attributes['connection'] or sqlalchemy.url "
                "(README: Alembic env.py)"
            )

    def failure_hint(self, error: BaseException) -> str:
        """A failure to open a connection is what an ``env.py`` aiming at another server raises.

        Only opening one: the build's own connection is already open, so a lost
        connection (a server stopped mid-build) is not a sign of another server.
        """
        names = {cls.__name__ for cls in type(error).__mro__}
        opening = any(sign in str(error) for sign in _OPENING_FAILED)
        return _ELSEWHERE_HINT if "OperationalError" in names and opening else ""

    def _config(self) -> Any:
        try:
            from alembic.config import Config
        except ImportError:
            # Alembic is the user's dependency, not the kit's: most schemas need none.
            raise SchemaSourceError(
                f"schema source {self.ini} is an Alembic config, but Alembic is not "
                "installed in this environment: pip install alembic"
            ) from None
        return Config(str(self.ini))

    def _script_directory(self) -> Path:
        return self._directories[0]

    @cached_property
    def _directories(self) -> tuple[Path, ...]:
        """The script directory, then its version locations, as absolute paths.

        Once per source: Alembic prepends ``prepend_sys_path`` to ``sys.path`` on
        every reading of the config.
        """
        config = self._config()
        from alembic.script import ScriptDirectory

        try:
            with chdir(self.ini.parent):
                script = ScriptDirectory.from_config(config)
                # Absolute as Alembic's %(here)s is: normalised, symbolic links kept;
                # inside the block, as version_locations is resolved when read.
                return tuple(
                    Path(os.path.abspath(location))  # noqa: PTH100 - %(here)s keeps links
                    for location in (script.dir, *script.version_locations)
                )
        except Exception as error:
            raise SchemaSourceError(
                f"Alembic config {self.ini} is not usable: {first_line(error)}"
            ) from error

    def _files(self) -> list[Path]:
        """Every file of the script directory and its version locations, sorted."""
        directories = set(self._directories)
        files = {path for directory in directories for path in _source_files(directory)}
        return sorted(files)


def _source_files(directory: Path) -> Iterator[Path]:
    for path in directory.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


@contextmanager
def _logging_kept_out() -> Iterator[None]:
    """Run migrations without the ``fileConfig`` call of Alembic's ``env.py`` template.

    Inside pytest it would replace the logging configuration of the run, and its
    INFO lines ("Running upgrade ...") would fill the user's output. ``env.py`` is
    executed afresh on each upgrade, so its ``from logging.config import
    fileConfig`` picks up the stand-in for exactly this build.
    """
    real = logging.config.fileConfig
    logging.config.fileConfig = _no_file_config
    try:
        yield
    finally:
        logging.config.fileConfig = real


def _no_file_config(*_: object, **__: object) -> None:
    """Stands in for ``logging.config.fileConfig`` while the kit builds a template."""
