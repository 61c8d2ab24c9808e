"""The fixtures a suite uses: its database's URL, an engine, a connection, a session.

Per-test isolation follows pytest-django's shape: a default for the run, and a
marker to opt single tests into something stronger.

- ``rollback`` (default): the test runs inside a transaction rolled back at its end;
  the ORM session joins it in SAVEPOINT mode, so application code may ``commit()``.
- ``truncate``: real commits; afterwards every table that was empty in the
  template is truncated (seed rows written by migrations are kept).
- ``fresh``: the test gets its own clone of the template, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from ci.config import ISOLATIONS, Isolation

if TYPE_CHECKING:
    from ci.lifecycle import WorkerDatabases

ISOLATION_MARKER = "db_isolation"
DATABASES_KEY = pytest.StashKey["WorkerDatabases"]()
_TRUNCATABLE_KEY = pytest.StashKey[list[str]]()

_NOT_ENABLED = (
    "ci-kit is not enabled for this run: add a [tool.ci-kit] table to pyproject.toml, "
    "or pass --db-url / set CI_KIT_DATABASE_URL"
)


@pytest.fixture(scope="session")
def db_url(request: pytest.FixtureRequest) -> URL:
    """This process's test database (``<base>_gwN`` under xdist), password intact."""
    return _databases(request).url


@pytest.fixture(scope="session")
def db_engine(db_url: URL) -> Iterator[Engine]:
    """An engine on this process's test database, disposed at the end of the session."""
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db_connection(request: pytest.FixtureRequest, db_engine: Engine) -> Iterator[Connection]:
    """A connection isolated according to the test's ``db_isolation`` marker."""
    isolation = isolation_of(request)
    if isolation == "rollback":
        yield from _rolled_back(db_engine)
    elif isolation == "truncate":
        yield from _truncated(request, db_engine)
    else:
        yield from _fresh(request)


@pytest.fixture
def db_session(db_connection: Connection) -> Iterator[Session]:
    """An ORM session on ``db_connection``; ``commit()`` releases a SAVEPOINT, not the test."""
    session = Session(
        bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    yield session
    session.close()


def isolation_of(request: pytest.FixtureRequest) -> Isolation:
    """The test's marker, else the run's default (``[tool.ci-kit] isolation``)."""
    marker = request.node.get_closest_marker(ISOLATION_MARKER)
    if marker is None:
        return _databases(request).plan.isolation  # type: ignore[return-value]
    mode = marker.args[0] if marker.args else marker.kwargs.get("mode")
    if mode not in ISOLATIONS:
        raise pytest.UsageError(
            f"{request.node.nodeid}: @pytest.mark.{ISOLATION_MARKER} takes one of "
            f"{', '.join(ISOLATIONS)}, not {mode!r}"
        )
    return cast(Isolation, mode)


def _rolled_back(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            if transaction.is_active:
                transaction.rollback()


def _truncated(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        tables = _truncatable_tables(request, connection)
        try:
            yield connection
        finally:
            connection.rollback()
            if tables:
                connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
                connection.commit()


def _fresh(request: pytest.FixtureRequest) -> Iterator[Connection]:
    databases = _databases(request)
    url = databases.create_fresh()
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()
        databases.drop(url)


def _truncatable_tables(request: pytest.FixtureRequest, connection: Connection) -> list[str]:
    """Quoted names of the tables that are empty in the template, found once per process.

    Found before the first truncate test changes anything, when the worker's
    database still equals the template: rollback tests leave no trace.
    """
    stash = request.config.stash
    if _TRUNCATABLE_KEY not in stash:
        rows = connection.execute(
            text(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
                "AND tablename <> 'alembic_version' ORDER BY 1"
            )
        ).scalars()
        stash[_TRUNCATABLE_KEY] = [
            name
            for name in rows
            if connection.execute(text(f"SELECT NOT EXISTS (SELECT FROM {name})")).scalar()
        ]
        connection.rollback()
    return stash[_TRUNCATABLE_KEY]


def _databases(request: pytest.FixtureRequest) -> WorkerDatabases:
    databases = request.config.stash.get(DATABASES_KEY, None)
    if databases is None:
        pytest.fail(_NOT_ENABLED, pytrace=False)
    return databases
