"""A schema from ``package.module:metadata`` (or a declarative base): ``create_all``."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_mock_engine, inspect
from sqlalchemy.engine import Connection

from ci_kit.errors import SchemaNotInTemplate, SchemaSourceError, first_line
from ci_kit.schema.targets import resolve_target


@dataclass(frozen=True)
class MetadataSchema:
    """Tables of a SQLAlchemy ``MetaData``, imported from the project at ``root``."""

    target: str
    root: Path

    def describe(self) -> str:
        return f"metadata ({self.target})"

    def fingerprint_parts(self) -> Iterator[bytes]:
        """The DDL ``create_all`` would run: it changes exactly when the tables do."""
        yield b"metadata"
        for statement in _ddl(self.metadata()):
            yield statement.encode()

    def build(self, connection: Connection) -> None:
        self.metadata().create_all(connection)

    def verify(self, connection: Connection) -> None:
        """Every table must be there: a DDL hook may have built some on another engine."""
        inspector = inspect(connection)
        missing = [
            table.fullname
            for table in self.metadata().sorted_tables
            if not inspector.has_table(table.name, schema=table.schema)
        ]
        connection.rollback()
        if missing:
            raise SchemaNotInTemplate(
                f"after create_all, template {connection.engine.url.database!r} lacks "
                f"{', '.join(missing)}: does {self.target} build its tables on another engine?"
            )

    def failure_hint(self, error: BaseException) -> str:
        return ""

    def metadata(self) -> MetaData:
        """Import the target and return its MetaData (or a declarative base's)."""
        # Loaded first, as an application that runs does before its models: a module
        # that uses sqlalchemy.dialects.postgresql without importing it fails otherwise.
        importlib.import_module("sqlalchemy.dialects.postgresql")
        _, value = resolve_target(
            self.target, self.root, what="schema source", error=SchemaSourceError
        )
        metadata = getattr(value, "metadata", value)
        if not isinstance(metadata, MetaData):
            raise SchemaSourceError(
                f"schema source {self.target!r} is a {type(value).__name__}, not a MetaData "
                "or a declarative base"
            )
        return metadata


def _ddl(metadata: MetaData) -> list[str]:
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
