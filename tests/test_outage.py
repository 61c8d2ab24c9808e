"""Telling a failure every later test would share (the server went away, refuses the
kit's role, lost the database) from a test that failed, and stopping the run once."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError as SQLAlchemyOperationalError

from ci_kit.dburl import render, secret_forms, with_database
from ci_kit.outage import is_connection_loss, stopping_line
from tests.helpers.projects import write_project
from tests.helpers.roles import throwaway_role
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
    assert stopping_line(caught.value, server_url, server_url) is None
    with connect_to(server_url, "postgres") as conn:  # and the server is indeed there
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_an_unreachable_server_is_named_without_its_password(server_url: URL) -> None:
    gone = server_url.set(port=1)
    line = stopping_line(psycopg.OperationalError(f"lost {TEST_PASSWORD}"), gone, gone)
    assert line is not None
    assert line.startswith("ci-kit: the PostgreSQL server at 127.0.0.1:1 went away during the run")
    assert TEST_PASSWORD not in line


def test_a_server_that_refuses_the_kits_role_stops_the_run_but_has_not_gone_away(
    server_url: URL,
) -> None:
    """A refusal is an answer: the server is there, and refuses every later test."""
    refused = server_url.set(password="wrong" + TEST_PASSWORD)
    error = psycopg.OperationalError("server closed the connection unexpectedly")
    line = stopping_line(error, refused, refused)
    assert line is not None
    assert "went away" not in line
    assert "password authentication failed for role 'ci_kit'" in line
    assert line.endswith("stopping: every later test would be refused the same way")
    assert TEST_PASSWORD not in line


def test_a_dropped_database_stops_the_run(server_url: URL) -> None:
    missing = with_database(server_url, "kit_never_created_test")
    error = psycopg.OperationalError("terminating connection due to administrator command")
    line = stopping_line(error, server_url, missing)
    assert line == (
        "ci-kit: the test database 'kit_never_created_test' was dropped during the run "
        "(by another session or run); stopping: no later test could use it"
    )


# What a superuser does to the run's role or database during test 0; test 0 then
# ends the sessions on the database, so test 1 needs a new connection.
CONDITIONS = {
    "role-connection-limit": (
        "ALTER ROLE {role} CONNECTION LIMIT 0",
        "has no connection left for role",
    ),
    "database-connection-limit": (
        "ALTER DATABASE {database} CONNECTION LIMIT 0",
        "has no connection left for role",
    ),
    "password-changed": ("ALTER ROLE {role} PASSWORD 'changed'", "password authentication failed"),
    "login-revoked": ("ALTER ROLE {role} NOLOGIN", "is not permitted to log in"),
    "database-dropped": ("DROP DATABASE {database} WITH (FORCE)", "was dropped during the run"),
}

CHANGING_SUITE = """
import os, subprocess
import pytest
from sqlalchemy.engine import make_url

def superuser(statement):
    subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-q", "-v", "ON_ERROR_STOP=1",
                    "-c", statement], check=True, capture_output=True)

@pytest.mark.parametrize("n", range(6))
def test_queries(db_connection, db_url, n):
    if n == 0:
        database = db_url.database
        superuser(os.environ["CONDITION"].format(role=db_url.username, database=database))
        superuser("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  f"WHERE datname = '{database}' AND pid <> pg_backend_pid()")
        return
    db_connection.exec_driver_sql("SELECT 1")
"""


@pytest.mark.parametrize(("statement", "said"), list(CONDITIONS.values()), ids=list(CONDITIONS))
def test_a_condition_that_refuses_every_later_test_stops_the_run_once(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    server_url: URL,
    base_name: str,
    statement: str,
    said: str,
) -> None:
    with throwaway_role(server_url, TEST_PASSWORD) as url:
        write_project(pytester, base_name, count=1)
        pytester.makepyfile(test_changing=CHANGING_SUITE)
        monkeypatch.setenv("CONDITION", statement)
        result = pytester.runpytest_subprocess(
            "--ci-kit-url",
            render(url.set(database=base_name)),
            "-p",
            "no:randomly",
            "-k",
            "queries",
            "--tb=long",
            "-l",
        )
    output = result.stdout.str() + result.stderr.str()
    assert result.ret in (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.INTERRUPTED), output
    assert result.parseoutcomes().get("passed") == 1, output
    assert result.parseoutcomes().get("failed") == 1, output  # the first test that met it
    stops = [line for line in output.splitlines() if line.startswith("ci-kit: ") and said in line]
    assert len(stops) == 1, output
    assert "stopping" in stops[0]
    assert "Traceback" not in output
    assert not [form for form in secret_forms(TEST_PASSWORD) if form in output]
