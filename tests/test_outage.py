"""Telling a server that went away from a test that failed."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError as SQLAlchemyOperationalError

from ci_kit.dburl import with_database
from ci_kit.outage import is_connection_loss, lost_server_line
from tests.helpers.server import TEST_PASSWORD, connect_to


def wrapped(error: BaseException) -> AssertionError:
    """An application's own exception raised while handling ``error``."""
    try:
        raise error
    except BaseException:
        try:
            raise AssertionError("the repository could not load the invoice")
        except AssertionError as outer:
            return outer


def causes_in_a_circle() -> ValueError:
    """Two errors each the other's cause: an application can build that by hand."""
    first, second = ValueError("first"), ValueError("second")
    first.__cause__, second.__cause__ = second, first
    return first


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (psycopg.errors.AdminShutdown("terminating connection"), True),
        (SQLAlchemyOperationalError("SELECT 1", {}, psycopg.OperationalError("gone")), True),
        (wrapped(psycopg.OperationalError("gone")), True),
        (psycopg.errors.UniqueViolation("duplicate key"), False),
        (AssertionError("assert 1 == 2"), False),
        (wrapped(ValueError("bad invoice")), False),
        (causes_in_a_circle(), False),
    ],
    ids=[
        "driver",
        "admin-shutdown",
        "sqlalchemy",
        "wrapped",
        "sql-error",
        "assert",
        "other",
        "causes-in-a-circle",
    ],
)
def test_connection_losses_are_told_from_other_failures(error: BaseException, lost: bool) -> None:
    assert is_connection_loss(error) is lost


def test_a_test_that_ends_its_own_session_is_not_a_server_gone(server_url: URL) -> None:
    engine = create_engine(with_database(server_url, "postgres"))
    with pytest.raises(SQLAlchemyOperationalError) as caught, engine.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
    engine.dispose()
    assert is_connection_loss(caught.value)
    assert lost_server_line(caught.value, server_url) is None
    with connect_to(server_url, "postgres") as conn:  # and the server is indeed there
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_an_unreachable_server_is_named_without_its_password(server_url: URL) -> None:
    gone = server_url.set(port=1)
    line = lost_server_line(psycopg.OperationalError(f"lost {TEST_PASSWORD}"), gone)
    assert line is not None
    assert line.startswith("ci-kit: the PostgreSQL server at 127.0.0.1:1 went away during the run")
    assert TEST_PASSWORD not in line


def test_a_server_that_answers_but_refuses_the_role_has_not_gone_away(server_url: URL) -> None:
    """Only a server nobody can reach is gone: a refusal is an answer."""
    refused = server_url.set(password="wrong" + TEST_PASSWORD)
    error = psycopg.OperationalError("server closed the connection unexpectedly")
    assert lost_server_line(error, refused) is None
