"""No password in any report of a run: a family of driver errors, every way pytest shows them.

pytest prints the arguments of every frame of a traceback, and with ``-l`` their
locals: a psycopg frame holds the connection string. Whatever raises on the
kit's connections or in a fixture, and however the run reports it (``-vv``,
``--tb=long``, ``-l``, native tracebacks, junitxml, xdist), no form of the
password is shown, and database names are never masked in its place.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import URL

from ci_kit.dburl import render, secret_forms
from tests.helpers.projects import write_project
from tests.helpers.roles import throwaway_role
from tests.helpers.server import TEST_PASSWORD

# Each test fails with a real driver error raised on the run's server, its URL
# (password intact) in the frames' arguments, locals, captured output or message.
FAILING_SUITE = """
import os
import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

def libpq(url):
    return dict(host=url.host, port=url.port, user=url.username,
                password=url.password, dbname=url.database)

@pytest.fixture
def app_connection(db_url):
    with psycopg.connect(**libpq(db_url.set(database="missing_" + db_url.database))) as conn:
        yield conn

def test_connect_refused(db_url):
    psycopg.connect(**libpq(db_url.set(port=1)), connect_timeout=5)

def test_wrong_password(db_url):
    psycopg.connect(**libpq(db_url.set(password=db_url.password + "x")))

def test_database_missing_through_sqlalchemy(db_url):
    create_engine(db_url.set(database="missing_" + db_url.database), poolclass=NullPool).connect()

def test_conninfo_string(db_url):
    psycopg.connect(make_conninfo(**libpq(db_url.set(port=1))), connect_timeout=5)

def test_query_canceled(db_connection):
    db_connection.exec_driver_sql("SET LOCAL statement_timeout = 1")
    db_connection.exec_driver_sql("SELECT pg_sleep(1)")

def test_admin_shutdown(db_connection):
    db_connection.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")

def test_in_an_application_fixture(app_connection):
    pass

def test_prints_and_compares_the_url(db_url):
    url = os.environ["APP_DATABASE_URL"]
    print("connecting with", url, db_url.password)
    assert url == db_url.password
"""
FAILURES = 8

OUTPUT_MODES = {
    "vv": ("-vv",),
    "tb-long": ("--tb=long",),
    "showlocals": ("-l", "--tb=long"),
    "tb-native": ("--tb=native",),
    "junitxml": ("--junitxml=report.xml", "-rA"),
    "xdist": ("-n", "2", "-vv", "-l"),
}


def leaked(text: str, password: str) -> list[str]:
    return [form for form in secret_forms(password) if form in text]


def run_failing_suite(
    pytester: pytest.Pytester, url: URL, base: str, *args: str
) -> tuple[pytest.RunResult, str]:
    write_project(pytester, base, count=1, **{"url-env": "APP_DATABASE_URL"})
    pytester.makepyfile(test_failing=FAILING_SUITE)
    result = pytester.runpytest_subprocess(
        "--ci-kit-url", render(url.set(database=base)), "-p", "no:randomly", *args
    )
    output = result.stdout.str() + result.stderr.str()
    report = pytester.path / "report.xml"
    if report.exists():
        output += report.read_text()
    return result, output


@pytest.mark.parametrize("args", list(OUTPUT_MODES.values()), ids=list(OUTPUT_MODES))
def test_no_driver_error_shows_the_password_however_the_run_reports_it(
    pytester: pytest.Pytester, server_url: URL, base_name: str, args: tuple[str, ...]
) -> None:
    result, output = run_failing_suite(pytester, server_url, base_name, *args)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("errors", outcomes.get("error", 0)) == (
        FAILURES
    ), output
    assert outcomes.get("passed") == 2, output  # the project's own two tests
    assert "OperationalError" in output  # the failures are shown, their secrets are not
    assert not leaked(output, TEST_PASSWORD)


def test_a_kit_fixture_that_cannot_connect_fails_in_one_line(
    pytester: pytest.Pytester, server_url: URL, base_name: str
) -> None:
    """The application's password never reaches the report: psycopg's frames are not shown."""
    write_project(pytester, base_name, count=1)
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def db_engine(db_url):
            from sqlalchemy import create_engine
            return create_engine(db_url.set(port=1))  # a server that is not there
        """
    )
    pytester.makepyfile(test_one="def test_needs_a_connection(db_connection):\n    pass\n")
    result = pytester.runpytest_subprocess(
        "--ci-kit-url",
        render(server_url.set(database=base_name)),
        "-p",
        "no:randomly",
        "-k",
        "needs_a_connection",
        "--tb=long",
        "-l",
    )
    output = result.stdout.str() + result.stderr.str()
    result.assert_outcomes(errors=1)
    assert "ci-kit: cannot reach PostgreSQL at" in output
    shown = output.split("ERROR at setup", 1)[1]
    assert "OperationalError" not in shown, output  # no frame, no chained error
    assert "conninfo" not in shown, output
    assert not leaked(output, TEST_PASSWORD)


@pytest.mark.parametrize("password", ["test", "kit", "gw1"])
def test_a_password_that_is_part_of_the_names_masks_no_name(
    pytester: pytest.Pytester, server_url: URL, base_name: str, password: str
) -> None:
    """``test`` as a password: the run still names ``kit_..._test_gw1``, in full."""
    with throwaway_role(server_url, password) as url:
        result, output = run_failing_suite(pytester, url, base_name, "-n", "2", "-v")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert f"{base_name}_tpl_" in output  # the header names the template in full
    assert f":***@127.0.0.1:5432/{base_name}_gw" in output  # the printed URL: password only
    assert "_***" not in output, output
    assert "***_" not in output, output


def test_a_module_that_fails_at_import_shows_no_password(
    pytester: pytest.Pytester, server_url: URL, base_name: str
) -> None:
    """An application connecting at import: the collection error is redacted too."""
    write_project(pytester, base_name, count=1, **{"url-env": "APP_DATABASE_URL"})
    pytester.makepyfile(
        test_app="""
        import os, psycopg
        conn = psycopg.connect(os.environ["APP_DATABASE_URL"].replace(":5432/", ":1/"))
        """
    )
    result = pytester.runpytest_subprocess(
        "--ci-kit-url", render(server_url.set(database=base_name)), "--tb=long", "-l"
    )
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, output  # pytest: errors during collection
    assert "ERROR collecting test_app.py" in output
    assert "conninfo = 'postgresql+psycopg://ci_kit:***@" in output  # psycopg's frame, masked
    assert not leaked(output, TEST_PASSWORD)
