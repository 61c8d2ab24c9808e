"""How one test's database work is undone: rollback, truncate, or a fresh clone.

- ``rollback`` (default): the test runs inside a transaction rolled back at its end;
  the ORM session joins it in SAVEPOINT mode, so application code may ``commit()``.
- ``truncate``: real commits; afterwards every table that was empty in the
  template is truncated (seed rows written by migrations are kept).
- ``fresh``: the test gets its own clone of the template, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from ci_kit.workers import WorkerDatabases

_TRUNCATABLE_KEY = pytest.StashKey[list[str]]()


def rolled_back(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            if transaction.is_active:
                transaction.rollback()


def truncated(stash: pytest.Stash, engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        tables = _truncatable_tables(stash, connection)
        try:
            yield connection
        finally:
            connection.rollback()
            if tables:
                connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
                connection.commit()


def fresh(databases: WorkerDatabases) -> Iterator[Connection]:
    """A clone of its own for the test; the project's variables name it while the test runs."""
    from ci_kit.variables import pointed

    url = databases.create_fresh()
    databases.check_ours(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with pointed(databases.plan.variables_for(url)), engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()
        databases.drop(url)


def _truncatable_tables(stash: pytest.Stash, connection: Connection) -> list[str]:
    """The tables :func:`empty_tables` finds, found once per process.

    Found before the first truncate test changes anything, when the worker's
    database still equals the template: rollback tests leave no trace.
    """
    if _TRUNCATABLE_KEY not in stash:
        stash[_TRUNCATABLE_KEY] = empty_tables(connection)
    return stash[_TRUNCATABLE_KEY]


def empty_tables(connection: Connection) -> list[str]:
    """Quoted names of the database's empty tables but ``alembic_version``.

    On a database fresh from its schema, these are what a truncation empties:
    rows the migrations seeded (currencies, roles) stay.
    """
    rows = connection.execute(
        text(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
            "AND tablename <> 'alembic_version' ORDER BY 1"
        )
    ).scalars()
    empty = [
        name
        for name in list(rows)
        if connection.execute(text(f"SELECT NOT EXISTS (SELECT FROM {name})")).scalar()
    ]
    connection.rollback()
    return empty
