"""A server that went away in the middle of a run: recognised once, said once.

When PostgreSQL dies under a running suite (the OOM killer, a CI service
container stopping, a person's ``kill``), every test after that point fails with
a driver traceback, and so does every cleanup step: a thousand lines that all
say the same thing. This module is the one place that tells such a loss from an
ordinary failure, so the plugin can turn it into one line and stop the run, and
the cleanup paths can skip work that no longer has a server to happen on. The
same holds for a server that is there but refuses every test from now on: a
connection limit reached, the role's password changed, the database dropped.

A lost connection alone proves little (a test may kill its own backend), so the
verdict is the server's: it is gone when a new connection is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from ci_kit.dburl import redact
from ci_kit.errors import CiKitError, DatabaseMissing, ServerUnreachable, first_line

_CAUSES_FOLLOWED = 8


def is_connection_loss(error: BaseException) -> bool:
    """Did ``error`` come from a connection the server closed or never opened?

    SQLAlchemy wraps the driver's error, and an application may wrap it again:
    the chain of causes is followed a few links down.
    """
    seen: BaseException | None = error
    for _ in range(_CAUSES_FOLLOWED):
        if seen is None:
            return False
        if isinstance(seen, psycopg.OperationalError | psycopg.InterfaceError | ServerUnreachable):
            return True
        if isinstance(seen, DBAPIError) and (
            seen.connection_invalidated or isinstance(seen.orig, psycopg.OperationalError)
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def address(server_url: URL) -> str:
    """Where the server is, as a line that says it went away names it."""
    return f"{server_url.host or 'the local socket'}:{server_url.port or 5432}"


def server_is_gone(server_url: URL) -> bool:
    """Does the server refuse a new connection? Only asked after a loss."""
    from ci_kit.connecting import connect

    try:
        connect(server_url).close()
    except ServerUnreachable:
        return True
    except Exception:
        return False
    return False


@contextmanager
def tolerated(server_url: URL) -> Iterator[None]:
    """Let cleanup that finds the server gone end quietly; any other failure still raises."""
    try:
        yield
    except Exception as error:
        if not server_lost(error, server_url):
            raise


def server_lost(error: BaseException, server_url: URL) -> bool:
    """Did ``error`` come from the server going away (a lost connection, then no new one)?"""
    return is_connection_loss(error) and server_is_gone(server_url)


def stopping_line(error: BaseException, server_url: URL, database_url: URL) -> str | None:
    """The run's one line when ``error`` means no later test can use its database, else None.

    The verdict is a new connection to the process's database: a server nobody
    can reach went away; one that refuses the kit's own role (a connection limit
    reached, the password changed, the role dropped) or no longer has the database
    (dropped under the run) refuses every test that follows. A connection that
    opens says the failure was this test's own (it ended its session, a query was
    canceled): the run goes on.
    """
    if not is_connection_loss(error):
        return None
    from ci_kit.connecting import connect

    try:
        connect(database_url).close()
    except ServerUnreachable:
        return (
            f"ci-kit: the PostgreSQL server at {address(server_url)} went away during the run "
            f"({redact(first_line(error), server_url)}); stopping: no later test could reach it"
        )
    except DatabaseMissing:
        return (
            f"ci-kit: the test database {database_url.database!r} was dropped during the run "
            "(by another session or run); stopping: no later test could use it"
        )
    except CiKitError as refused:
        return f"ci-kit: {refused}; stopping: every later test would be refused the same way"
    return None
