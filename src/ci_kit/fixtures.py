"""The fixtures a suite uses: its database's URL, an engine, a connection, a session.

Per-test isolation follows pytest-django's shape: a default for the run, and a
marker to opt single tests into something stronger (see :mod:`ci_kit.isolation`).

The plugin imports this module in every pytest process, so SQLAlchemy is imported
inside the fixtures, when a test first asks for a database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, cast

import pytest

from ci_kit.config import ISOLATIONS, Isolation
from ci_kit.phases import phase

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, Engine
    from sqlalchemy.orm import Session

    from ci_kit.workers import WorkerDatabases

ISOLATION_MARKER = "db_isolation"
DATABASES_KEY: pytest.StashKey[WorkerDatabases] = pytest.StashKey()

_NOT_ENABLED = (
    "ci-kit is not enabled for this run: add a [tool.ci-kit] table to pyproject.toml, "
    "or pass --ci-kit-url / set CI_KIT_DATABASE_URL"
)


@pytest.fixture(scope="session")
def db_url(request: pytest.FixtureRequest) -> URL:
    """This process's test database (``<base>_gwN`` under xdist), password intact.

    Checked once per process to carry this run's mark: every other database
    fixture reaches the server through this URL.
    """
    databases = _databases(request)
    with _failing_in_one_line(databases):
        databases.check_ours(databases.url)
    return databases.url


@pytest.fixture(scope="session")
def db_engine(request: pytest.FixtureRequest, db_url: URL) -> Iterator[Engine]:
    """An engine on this process's test database, disposed at the end of the session."""
    from sqlalchemy import create_engine

    with phase(request.config.stash, "engine"):
        engine = create_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db_connection(request: pytest.FixtureRequest, db_engine: Engine) -> Iterator[Connection]:
    """A connection isolated according to the test's ``db_isolation`` marker."""
    from ci_kit import isolation

    mode = isolation_of(request)
    databases = _databases(request)
    with _failing_in_one_line(databases):
        if mode == "rollback":
            yield from isolation.rolled_back(db_engine)
        elif mode == "truncate":
            yield from isolation.truncated(request.config.stash, db_engine)
        else:
            yield from isolation.fresh(databases)


@pytest.fixture
def db_session(db_connection: Connection) -> Iterator[Session]:
    """An ORM session on ``db_connection``; ``commit()`` releases a SAVEPOINT, not the test."""
    from sqlalchemy.orm import Session

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


@contextmanager
def _failing_in_one_line(databases: WorkerDatabases) -> Iterator[None]:
    """The kit's errors and the driver's, met while a fixture connects or cleans up, as one line.

    pytest's traceback of a driver error shows psycopg's frames with their
    arguments, the connection string and its password among them: the fixture fails
    with the line alone. The error stays the failure's context, so the plugin can
    tell one that every later test would share (:mod:`ci_kit.outage`).
    """
    from ci_kit.connecting import driver_error_line
    from ci_kit.errors import CiKitError

    try:
        yield
    except Exception as error:
        if isinstance(error, CiKitError):
            line: str | None = str(error)
        else:
            line = driver_error_line(error, databases.url)
        if line is None:
            raise
        # ``from None``: pytest would print the suppressed chain's messages; the
        # error stays the failure's ``__context__`` for the plugin to judge.
        raise pytest.fail.Exception(f"ci-kit: {line}", pytrace=False) from None


def _databases(request: pytest.FixtureRequest) -> WorkerDatabases:
    databases = request.config.stash.get(DATABASES_KEY, None)
    if databases is None:
        pytest.fail(_NOT_ENABLED, pytrace=False)
    return databases
