"""The schema source: what shapes the template, its fingerprint, and how it is built.

The template database is named by a fingerprint of everything that shapes it, so
a changed migration, ``env.py`` or model gets a new template instead of a stale
cached one (the pgtestdb and pytest-django ``--reuse-db`` pitfall).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging.config
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import MetaData, create_mock_engine, inspect
from sqlalchemy.engine import Connection

from ci_kit.errors import MigrationFailed, SchemaNotInTemplate, SchemaSourceError, first_line

FINGERPRINT_VERSION = "1"
"""Bumped when the way the kit builds a template changes, invalidating old ones."""

SchemaKind = Literal["alembic", "metadata", "empty"]


@dataclass(frozen=True)
class SchemaSource:
    """Where the schema comes from: an ``alembic.ini``, a ``module:metadata``, or nothing."""

    kind: SchemaKind
    target: str = ""

    def describe(self) -> str:
        return {"alembic": "Alembic", "metadata": "metadata"}.get(self.kind, "empty") + (
            f" ({self.target})" if self.target else ""
        )


def parse_schema_source(value: str | None, root: Path) -> SchemaSource:
    """Decide the kind from the value's shape: ``*.ini`` is Alembic, ``a.b:c`` metadata."""
    if not value:
        return SchemaSource("empty")
    if value.endswith(".ini"):
        path = Path(value) if Path(value).is_absolute() else root / value
        if not path.is_file():
            raise SchemaSourceError(
                f"schema source {value!r}: no such Alembic config file at {path}"
            )
        return SchemaSource("alembic", str(path))
    module, sep, attribute = value.partition(":")
    if not sep or not module or not attribute:
        raise SchemaSourceError(
            f"schema source {value!r} is neither a path to alembic.ini nor "
            "'package.module:metadata'"
        )
    return SchemaSource("metadata", value)


def fingerprint(source: SchemaSource, *, server_major: int, root: Path) -> str:
    """A hex digest of everything that shapes the template built from ``source``."""
    digest = hashlib.sha256()
    digest.update(f"ci-kit/{FINGERPRINT_VERSION}\0pg{server_major}\0{source.kind}\0".encode())
    if source.kind == "alembic":
        for path in _alembic_files(source):
            digest.update(str(path.relative_to(path.anchor)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    elif source.kind == "metadata":
        for statement in _metadata_ddl(load_metadata(source.target, root)):
            digest.update(statement.encode() + b"\0")
    return digest.hexdigest()


def build_schema(
    source: SchemaSource, connection: Connection, *, root: Path, quiet_alembic: bool = True
) -> None:
    """Build the schema into the database ``connection`` is open on, commit, and check it.

    Alembic runs in-process on the given connection (its cookbook's "sharing a
    connection" recipe, through ``config.attributes["connection"]``); ``sqlalchemy.url``
    is set as well, %-escaped for ConfigParser, for ``env.py`` files that read it.
    Many ``env.py`` files build their own engine from the application's settings
    instead, and would migrate some other database: the check afterwards is what
    tells a built template from an empty one. ``quiet_alembic`` keeps ``env.py``'s
    ``fileConfig`` from reconfiguring the logging of the pytest run.
    """
    try:
        if source.kind == "alembic":
            quiet = _alembic_logging_kept_out() if quiet_alembic else contextlib.nullcontext()
            with quiet:
                _run_alembic_upgrade(source, connection)
        elif source.kind == "metadata":
            load_metadata(source.target, root).create_all(connection)
        connection.commit()
    except (SchemaSourceError, MigrationFailed):
        raise
    except (Exception, SystemExit) as error:  # a failure in user migrations is the user's to fix
        hint = _ELSEWHERE_HINT if source.kind == "alembic" and _is_connect_error(error) else ""
        raise MigrationFailed(
            f"building the schema from {source.describe()} failed: "
            f"{type(error).__name__}: {first_line(error)}{hint}"
        ) from error
    check_schema(source, connection, root=root)


def check_schema(source: SchemaSource, connection: Connection, *, root: Path) -> None:
    """Raise unless the database holds the schema: Alembic at head, or every table."""
    database = connection.engine.url.database
    if source.kind == "alembic":
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        heads = set(ScriptDirectory.from_config(_alembic_config(source)).get_heads())
        current = set(MigrationContext.configure(connection).get_current_heads())
        connection.rollback()
        if current != heads:
            found = ", ".join(sorted(current)) or "no alembic_version"
            raise SchemaNotInTemplate(
                f"after alembic upgrade head, template {database!r} has {found}, not head "
                f"({', '.join(sorted(heads))}): your env.py connected elsewhere; make it "
                "use config.attributes['connection'] or sqlalchemy.url (README: Alembic env.py)"
            )
    elif source.kind == "metadata":
        inspector = inspect(connection)
        missing = [
            table.fullname
            for table in load_metadata(source.target, root).sorted_tables
            if not inspector.has_table(table.name, schema=table.schema)
        ]
        connection.rollback()
        if missing:
            raise SchemaNotInTemplate(
                f"after create_all, template {database!r} lacks {', '.join(missing)}: "
                f"does {source.target} build its tables on another engine?"
            )


_ELSEWHERE_HINT = (
    " (if your env.py builds its own engine from the application's settings, it ignored "
    "the kit's connection: use config.attributes['connection'], README: Alembic env.py)"
)


def _is_connect_error(error: BaseException) -> bool:
    """A driver's "could not connect": what an env.py aiming at another server raises."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return "OperationalError" in names


@contextmanager
def _alembic_logging_kept_out() -> Iterator[None]:
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


def load_metadata(target: str, root: Path) -> MetaData:
    """Import ``package.module:attribute`` and return its MetaData (or a Base's)."""
    module_name, _, attribute = target.partition(":")
    # Loaded first, as an application that runs does before its models: a module
    # that uses sqlalchemy.dialects.postgresql without importing it fails otherwise.
    importlib.import_module("sqlalchemy.dialects.postgresql")
    with _importable_from(root):
        try:
            module = importlib.import_module(module_name)
        except (Exception, SystemExit) as error:  # a module may sys.exit() when misconfigured
            raise SchemaSourceError(
                f"schema source {target!r} does not import: "
                f"{type(error).__name__}: {first_line(error)}"
            ) from error
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise SchemaSourceError(
                f"schema source {target!r}: module {module_name!r} has no attribute {part!r}"
            ) from None
    metadata = getattr(value, "metadata", value)
    if not isinstance(metadata, MetaData):
        raise SchemaSourceError(
            f"schema source {target!r} is a {type(value).__name__}, not a MetaData "
            "or a declarative base"
        )
    return metadata


def _run_alembic_upgrade(source: SchemaSource, connection: Connection) -> None:
    from alembic import command

    config = _alembic_config(source)
    config.attributes["connection"] = connection
    url = connection.engine.url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


def _alembic_config(source: SchemaSource) -> Any:
    try:
        from alembic.config import Config
    except ImportError:
        # Alembic is the user's dependency, not the kit's: most schemas need none.
        raise SchemaSourceError(
            f"schema source {source.target} is an Alembic config, but Alembic is not "
            "installed in this environment: pip install alembic"
        ) from None
    return Config(source.target)


def _alembic_files(source: SchemaSource) -> list[Path]:
    """Every file of the script directory and its version locations, sorted."""
    config = _alembic_config(source)
    from alembic.script import ScriptDirectory

    try:
        script = ScriptDirectory.from_config(config)
    except Exception as error:
        raise SchemaSourceError(
            f"Alembic config {source.target} is not usable: {first_line(error)}"
        ) from error
    directories = {Path(script.dir), *(Path(p) for p in script.version_locations)}
    files = {path for directory in directories for path in _source_files(directory)}
    return sorted(files)


def _source_files(directory: Path) -> Iterator[Path]:
    for path in directory.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def _metadata_ddl(metadata: MetaData) -> list[str]:
    """The PostgreSQL DDL that ``create_all`` would run, without a database."""
    statements: list[str] = []

    def record(sql: Any, *_: Any, **__: Any) -> None:
        statements.append(str(sql.compile(dialect=engine.dialect)))

    engine = create_mock_engine("postgresql+psycopg://", record)
    try:
        metadata.create_all(engine, checkfirst=False)
    except (Exception, SystemExit) as error:  # the metadata's own DDL event hooks ran
        raise SchemaSourceError(
            f"rendering the schema's DDL failed in its own code: "
            f"{type(error).__name__}: {first_line(error)}"
        ) from error
    return statements


@contextmanager
def _importable_from(root: Path) -> Iterator[None]:
    """Put the project root on ``sys.path`` while importing a user's module."""
    entry = str(root)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added:
            sys.path.remove(entry)
