"""Every server error in the kit's DDL is one line: the operation, the database, the fix.

One table (:mod:`ci_kit.server_errors`) maps SQLSTATEs to error types and hints, so
the tests are families: the table itself, without a server; a property that any
psycopg error raised inside any DDL method comes out as one line without the
password; and the conditions that can be created for real (a role without a right,
a maintenance database that cannot encode a name, a full disk, a session on
``template1``, a setting only a superuser may set), on real servers and through
whole pytest runs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from sqlalchemy.engine import URL

from ci_kit.admin import Admin
from ci_kit.cloning import clone
from ci_kit.dburl import render, secret_forms
from ci_kit.errors import (
    CiKitError,
    ConfigurationError,
    DatabaseInUse,
    DiskFull,
    PermissionDenied,
    ReadOnlyServer,
    ServerRefused,
    UnencodableName,
)
from ci_kit.marks import Mark
from ci_kit.server_errors import Ddl, explain
from tests.helpers.projects import write_project
from tests.helpers.server import (
    TEST_PASSWORD,
    as_superuser,
    build_template,
    connect_to,
    database_names,
    drop_leftover,
    new_base_name,
)

SERVER = URL.create(
    "postgresql+psycopg", username="app", password=TEST_PASSWORD, host="db", database="postgres"
)


def ddl(operation: Any, **context: Any) -> Ddl:
    return Ddl(operation, "app_test_gw0", "app", SERVER, **context)


# --- the table, without a server --------------------------------------------------------


def server_error(sqlstate: str, message: str) -> psycopg.Error:
    return psycopg.errors.lookup(sqlstate)(message)


@pytest.mark.parametrize(
    ("error", "statement", "kind", "hint"),
    [
        (
            server_error("42501", "permission denied to create database"),
            ddl("create"),
            PermissionDenied,
            "grant it with ALTER ROLE app CREATEDB",
        ),
        (
            server_error("42501", 'permission denied to set parameter "log_lock_waits"'),
            ddl("setting", setting="log_lock_waits", value="on"),
            PermissionDenied,
            "GRANT SET ON PARAMETER log_lock_waits TO app",
        ),
        (
            server_error("42501", "must be owner of database app_test_gw0"),
            ddl("drop", owner="postgres"),
            PermissionDenied,
            "belongs to role 'postgres', not 'app'",
        ),
        (
            server_error("53100", 'could not write to file "base/1/2": No space left on device'),
            ddl("clone", source="app_tpl"),
            DiskFull,
            "the server's disk is full",
        ),
        (
            server_error("25006", "cannot execute CREATE DATABASE in a read-only transaction"),
            ddl("create"),
            ReadOnlyServer,
            "it is a standby",
        ),
        (
            server_error("22P05", "character with byte sequence 0xe6 0x97 has no equivalent"),
            ddl("create"),
            UnencodableName,
            "choose a base name in plain ASCII",
        ),
        (
            server_error("22021", "invalid byte sequence for encoding"),
            ddl("mark"),
            UnencodableName,
            "choose a base name in plain ASCII",
        ),
        (
            server_error("55006", 'source database "app_tpl" is being accessed by other users'),
            ddl("clone", source="app_tpl"),
            DatabaseInUse,
            "cannot clone 'app_tpl': another session is connected to it",
        ),
        (
            server_error("55006", 'source database "template1" is being accessed by other users'),
            ddl("create", source="template1"),
            DatabaseInUse,
            "cannot clone 'template1' (PostgreSQL copies every new database from it)",
        ),
        (
            server_error("57014", "canceling statement due to statement timeout"),
            ddl("drop"),
            ServerRefused,
            "statement_timeout",
        ),
        (
            server_error("53300", "sorry, too many clients already"),
            ddl("create"),
            ServerRefused,
            "out of a resource",
        ),
        (
            server_error("42P04", 'database "app_test_gw0" already exists'),
            ddl("clone", source="app_tpl"),
            ServerRefused,
            "appeared meanwhile",
        ),
        (
            server_error("22023", 'invalid value for parameter "work_mem": "lots"'),
            ddl("setting", setting="work_mem", value="lots"),
            ConfigurationError,
            "[tool.ci-kit] database-settings work_mem = 'lots' is refused by the server",
        ),
        (
            server_error("42704", 'unrecognized configuration parameter "nonsense"'),
            ddl("setting", setting="nonsense", value="x", origin="the template 'app_tpl'"),
            ConfigurationError,
            "the template 'app_tpl' nonsense = 'x' is refused",
        ),
        (
            server_error("XX000", "something nobody foresaw"),
            ddl("seal"),
            ServerRefused,
            "sealing template 'app_test_gw0'",
        ),
        (
            psycopg.OperationalError("server closed the connection unexpectedly"),
            ddl("drop"),
            ServerRefused,
            "the connection to the server was lost",
        ),
        (
            UnicodeEncodeError("latin-1", "app_日本_test", 4, 6, "ordinal not in range(256)"),
            ddl("create"),
            UnencodableName,
            "choose a base name in plain ASCII",
        ),
    ],
    ids=lambda value: getattr(value, "sqlstate", None) or type(value).__name__,
)
def test_each_kind_of_server_error_gets_its_type_and_its_hint(
    error: Exception, statement: Ddl, kind: type[CiKitError], hint: str
) -> None:
    explained = explain(error, statement)
    assert type(explained) is kind
    line = str(explained)
    assert hint in line
    assert "\n" not in line
    assert "'app_test_gw0' at postgresql+psycopg://app:***@db/postgres failed: " in line


def test_the_servers_words_come_without_its_detail_lines() -> None:
    error = server_error("55006", 'source database "t" is being accessed\nDETAIL: 1 session')
    assert "DETAIL" not in str(explain(error, ddl("clone", source="t")))


# --- any error inside any DDL method: a property ---------------------------------------

# Every server error class psycopg knows, one per SQLSTATE.
_SERVER_ERRORS = sorted(
    {
        kind
        for kind in vars(psycopg.errors).values()
        if isinstance(kind, type) and issubclass(kind, psycopg.Error) and kind.sqlstate
    },
    key=lambda kind: str(kind.sqlstate),
)


class _FailingConnection:
    """The real connection, except that every statement fails with ``error``."""

    def __init__(self, real: psycopg.Connection[Any], error: Exception) -> None:
        self._real = real
        self._error = error

    def execute(self, *args: object, **kwargs: object) -> Any:
        raise self._error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@contextmanager
def failing(admin: Admin, error: Exception) -> Iterator[None]:
    real = admin._conn
    admin._conn = _FailingConnection(real, error)  # type: ignore[assignment]
    try:
        yield
    finally:
        admin._conn = real


_MARK = Mark("worker", "run", "app_test")

DDL_CALLS: dict[str, Callable[[Admin], object]] = {
    "create": lambda admin: admin.create("app_test_x", _MARK),
    "clone": lambda admin: clone(admin, "app_tpl", "app_test_x", _MARK, {"work_mem": "8MB"}),
    "ensure_database": lambda admin: admin.ensure_database("app_test_x"),
    "set_mark": lambda admin: admin.set_mark("app_test_x", _MARK),
    "seal_template": lambda admin: admin.seal_template("app_test_x", _MARK),
    "apply_settings": lambda admin: admin.apply_settings("app_test_x", {"work_mem": "8MB"}),
    "copy_settings": lambda admin: admin.copy_settings("app_tpl", "app_test_x"),
    "drop": lambda admin: admin.drop("app_test_x", allowed=lambda mark: True),
    "drop_created": lambda admin: admin.drop_created("app_test_x", 1),
    "drop_refusal": lambda admin: admin.drop_refusal("app_test_x"),
}


def _errors() -> st.SearchStrategy[Exception]:
    secret = st.sampled_from(sorted(secret_forms(TEST_PASSWORD)))
    words = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=30)
    message = st.lists(st.one_of(words, secret), max_size=5).map("\n".join)
    coded = st.builds(lambda kind, text: kind(text), st.sampled_from(_SERVER_ERRORS), message)
    uncoded = st.builds(psycopg.OperationalError, message) | st.builds(
        psycopg.InterfaceError, message
    )
    return coded | uncoded


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(error=_errors(), call=st.sampled_from(sorted(DDL_CALLS)))
def test_any_psycopg_error_in_any_ddl_method_is_one_line_without_the_password(
    admin_for_property: Admin, error: Exception, call: str
) -> None:
    with failing(admin_for_property, error), pytest.raises(CiKitError) as raised:
        DDL_CALLS[call](admin_for_property)
    line = str(raised.value)
    assert line.strip()
    assert "\n" not in line
    assert raised.value.__suppress_context__, "no driver traceback under the line"
    for form in secret_forms(TEST_PASSWORD):
        assert form not in line


@pytest.fixture(scope="module")
def admin_for_property(server_url: URL) -> Iterator[Admin]:
    """One connection for every example: none of them reaches the server."""
    admin = Admin(server_url)
    yield admin
    admin.close()


# --- the conditions, for real --------------------------------------------------------


@pytest.fixture
def template(admin: Admin, base_name: str) -> str:
    name = f"{base_name}_tpl"
    build_template(admin, name, base_name)
    return name


def test_a_role_without_createdb_is_told_the_grant(
    server_url: URL, base_name: str, template: str, run_id: str
) -> None:
    admin = Admin(server_url.set(username="ci_kit_nocreatedb"))
    try:
        with pytest.raises(PermissionDenied) as raised:
            clone(admin, template, f"{base_name}_gw0", Mark("worker", run_id, base_name), {})
    finally:
        admin.close()
    assert str(raised.value).startswith(f"cloning into database '{base_name}_gw0' at ")
    assert "grant it with ALTER ROLE ci_kit_nocreatedb CREATEDB" in str(raised.value)


def test_a_setting_only_a_superuser_may_set_is_not_a_createdb_problem(
    admin: Admin, base_name: str, template: str, run_id: str
) -> None:
    """The role has CREATEDB: telling it to grant CREATEDB would send it round in circles."""
    settings = {"log_min_duration_statement": "10"}
    with pytest.raises(PermissionDenied) as raised:
        clone(admin, template, f"{base_name}_gw0", Mark("worker", run_id, base_name), settings)
    line = str(raised.value)
    assert 'permission denied to set parameter "log_min_duration_statement"' in line
    assert "GRANT SET ON PARAMETER log_min_duration_statement TO ci_kit" in line
    assert "[tool.ci-kit] database-settings" in line
    assert "CREATEDB" not in line


def test_a_name_the_maintenance_databases_encoding_cannot_hold_is_one_line(
    server_url: URL, base_name: str, run_id: str
) -> None:
    """Names pass through the encoding of the database the kit is connected to."""
    latin1 = f"{base_name}_latin1"
    with connect_to(server_url, "postgres") as conn:
        conn.execute(
            sql.SQL(
                "CREATE DATABASE {} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
                "TEMPLATE template0"
            ).format(sql.Identifier(latin1))
        )
    admin = Admin(server_url.set(database=latin1))
    try:
        with pytest.raises(UnencodableName) as raised:
            admin.create(f"{base_name}_日本", Mark("worker", run_id, base_name))
    finally:
        admin.close()
    assert "choose a base name in plain ASCII" in str(raised.value)
    assert database_names(server_url, f"{base_name}_日本") == set()


def test_a_latin1_client_encoding_does_not_reach_the_kits_statements(
    monkeypatch: pytest.MonkeyPatch, server_url: URL, base_name: str, run_id: str
) -> None:
    monkeypatch.setenv("PGCLIENTENCODING", "LATIN1")
    name = f"{base_name}_日本_gw0"
    admin = Admin(server_url)
    try:
        admin.create(name, Mark("worker", run_id, base_name))
        assert admin.mark_of(name) == (True, Mark("worker", run_id, base_name))
        admin.drop(name, allowed=lambda mark: mark.run == run_id)
    finally:
        admin.close()


def test_a_database_of_another_roles_is_refused_naming_its_owner(
    admin: Admin, base_name: str
) -> None:
    name = f"{base_name}_gw0"
    comment = Mark("worker", "gone", base_name).to_comment(name)
    as_superuser(f'CREATE DATABASE "{name}"')
    try:
        as_superuser(f"COMMENT ON DATABASE \"{name}\" IS '{comment}'")
        assert admin.drop_refusal(name) == (
            f"database '{name}' belongs to role 'postgres', not 'ci_kit': only that role "
            "or a superuser may alter or drop it"
        )
        with pytest.raises(PermissionDenied) as raised:
            admin.drop(name, allowed=lambda mark: True)
        assert str(admin.drop_refusal(name)) in str(raised.value)
    finally:
        as_superuser(f'DROP DATABASE IF EXISTS "{name}"')


class TestOnAPrivateServer:
    """A session on ``template1`` would block every CREATE DATABASE on the shared server."""

    def test_a_session_on_template1_while_a_template_builds_is_named(
        self, pytester: pytest.Pytester, private_url: URL
    ) -> None:
        base = new_base_name()
        write_project(pytester, base)
        url = render(private_url.set(database=base))
        with connect_to(private_url, "template1"):
            result = pytester.runpytest_subprocess("-n", "2", "--ci-kit-url", url)
        output = result.stdout.str() + result.stderr.str()
        assert result.ret == pytest.ExitCode.USAGE_ERROR, output
        assert "Traceback" not in output
        (line,) = [line for line in result.stderr.lines if line.strip()]
        assert line.startswith(f"ERROR: ci-kit: creating database '{base}_tpl_")
        assert "cannot clone 'template1' (PostgreSQL copies every new database from it)" in line
        assert "WHERE datname = 'template1'" in line
        assert "None" not in line
        assert database_names(private_url, base) == set()


def test_a_full_disk_during_the_trial_clone_is_one_line(tmp_path: Path) -> None:
    """A cluster on a 120 MB tmpfs: a 5 MB template fits, then ballast leaves 2 MB free."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a private mount namespace")
    code = """
import os, sys, tempfile
from pathlib import Path
tempfile.tempdir = sys.argv[1]
from ci_kit.admin import Admin
from ci_kit.cloning import clone, ensure_template
from ci_kit.marks import Mark
from ci_kit.errors import CiKitError
from ci_kit.postgres import EmbeddedPostgres, find_binaries, stop_persistent
from tests.helpers.server import connect_to

def build(url):
    with connect_to(url, url.database) as conn:
        conn.execute("CREATE TABLE filler AS SELECT md5(g::text) FROM generate_series(1, 60000) g")

data = Path(sys.argv[1]) / "data"  # kept, to be on the tmpfs: stopped at the end
server = EmbeddedPostgres(find_binaries(allow_wheel=False), data_dir=data)
try:
    admin = Admin(server.start())
    ensure_template(admin, "app_tpl", base="app_test", run_id="r", build=build)
    free = os.statvfs(data)
    with open(data.parent / "ballast", "wb") as ballast:
        ballast.write(bytes(free.f_bavail * free.f_frsize - 2 * 2**20))
    try:
        clone(admin, "app_tpl", "app_test_trial", Mark("worker", "r", "app_test"), {})
    except CiKitError as error:
        print(type(error).__name__, error)
    admin.close()
finally:
    stop_persistent(data)
"""
    mount_point = Path(tempfile.mkdtemp(prefix="ci-kit-test-"))
    mount_point.chmod(0o755)
    script = (
        f"mount -t tmpfs -o size=120m,mode=0777 tmpfs {shlex.quote(str(mount_point))} || exit 99\n"
        f"exec {shlex.join([sys.executable, '-c', code, str(mount_point)])}"
    )
    try:
        done = subprocess.run(
            ["unshare", "--mount", "sh", "-c", script],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        mount_point.rmdir()
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = done.stdout.splitlines()
    assert line.startswith("DiskFull cloning into database 'app_test_trial' at "), line
    assert "No space left on device; the server's disk is full" in line


def test_a_latin1_client_encoding_with_a_unicode_base_name_passes(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    server_url: URL,
    base_name: str,
) -> None:
    base = base_name.replace("_test", "_日本_test")
    write_project(pytester, base, count=2)
    monkeypatch.setenv("PGCLIENTENCODING", "LATIN1")
    try:
        result = pytester.runpytest_subprocess(
            "-n", "2", "--ci-kit-url", render(server_url.set(database=base))
        )
        result.assert_outcomes(passed=4)
    finally:
        monkeypatch.delenv("PGCLIENTENCODING")
        for name in database_names(server_url, base):
            drop_leftover(server_url, name)
