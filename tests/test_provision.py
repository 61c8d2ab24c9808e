"""Databases created, cloned, swept and dropped on a real PostgreSQL server."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import URL

from ci_kit import provision
from ci_kit.dburl import secret_forms, with_database
from ci_kit.errors import (
    AuthenticationFailed,
    ConnectionRefused,
    DatabaseInUse,
    ForeignDatabase,
    InvalidDatabaseUrl,
    PermissionDenied,
    ServerUnreachable,
)
from ci_kit.provision import Admin, Mark
from tests.conftest import (
    TEST_PASSWORD,
    as_superuser,
    connect_to,
    create_unmarked,
    database_names,
    password_in_query,
    wait_until,
)


def ours(swept: list[str], base: str) -> list[str]:
    """What a sweep took of this test's databases.

    A sweep is server-wide, and under xdist other tests leave crashed runs' databases
    too (on purpose); and their sweeps, or their inner runs', may take this test's
    crashed run first. So tests judge a sweep by their own base's names and by what
    is left on the server.
    """
    return sorted(name for name in swept if name.startswith(base))


@pytest.fixture
def other_run_id() -> str:
    """The id of ``other_run``: its own per test, as run locks are server-wide and a
    concurrent test's other run must not keep this one's alive."""
    return f"other{uuid.uuid4().hex[:8]}"


@pytest.fixture
def other_run(server_url: URL, other_run_id: str) -> Iterator[Admin]:
    """A second, live run: its own connection holding its run lock."""
    other = Admin(server_url)
    other.lock(provision.run_lock(other_run_id))
    yield other
    other.close()


def make_table(url: URL, database: str) -> None:
    with connect_to(url, database) as conn:
        conn.execute("CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO items (name) VALUES ('seed')")


def build_template(admin: Admin, name: str, base: str, run: str = "run1") -> bool:
    return provision.ensure_template(
        admin,
        name,
        base=base,
        run_id=run,
        build=lambda url: make_table(url, str(url.database)),
    )


def test_marks_round_trip_and_ignore_foreign_comments() -> None:
    mark = Mark("worker", "abc", "app_test")
    assert Mark.from_comment(mark.to_comment("app_test_gw0"), "app_test_gw0") == mark
    assert Mark.from_comment(mark.to_comment("app_test_gw0"), "kept_for_debugging") is None
    assert Mark.from_comment(None, "app_test") is None
    assert Mark.from_comment("production data, do not touch", "app_test") is None
    assert Mark.from_comment("ci-kit {not json", "app_test") is None


def test_a_leftover_a_person_renamed_to_keep_is_theirs(
    admin: Admin, base_name: str, run_id: str, dead_run_id: str
) -> None:
    admin.create(f"{base_name}_gw0", Mark("worker", dead_run_id, base_name))
    kept = f"{base_name}_kept"
    with connect_to(admin.server_url, "postgres") as conn:
        conn.execute(f'ALTER DATABASE "{base_name}_gw0" RENAME TO "{kept}"')
    swept = provision.sweep(admin, run_id=run_id, base=f"{base_name}_x", keep_template="")
    assert ours(swept, base_name) == []
    assert kept not in {verdict.name for verdict in provision.clean(admin, dry_run=True)}
    with pytest.raises(ForeignDatabase):
        admin.drop(kept, allowed=lambda mark: True)
    assert database_names(admin.server_url, base_name) == {kept}


def test_template_is_built_once_then_reused(admin: Admin, base_name: str) -> None:
    template = f"{base_name}_tpl"
    assert build_template(admin, template, base_name)
    assert not build_template(admin, template, base_name)
    exists, mark = admin.mark_of(template)
    assert exists
    assert mark == Mark("template", "run1", base_name, ready=True)


def test_two_runs_building_at_once_build_the_template_once_and_the_waiting_say_so(
    server_url: URL, base_name: str
) -> None:
    template = f"{base_name}_tpl"
    results: list[bool] = []
    said: list[str] = []

    def slow_build(url: URL) -> None:
        time.sleep(1)
        make_table(url, str(url.database))

    def run(run_id: str) -> None:
        admin = Admin(server_url)
        try:
            results.append(
                provision.ensure_template(
                    admin,
                    template,
                    base=base_name,
                    run_id=run_id,
                    build=slow_build,
                    log=said.append,
                )
            )
        finally:
            admin.close()

    threads = [threading.Thread(target=run, args=(f"run{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, True]
    assert said == [f"waiting for another run to finish building template {template}"] * 2


def test_a_failed_build_leaves_no_template(admin: Admin, base_name: str) -> None:
    template = f"{base_name}_tpl"

    def broken(url: URL) -> None:
        raise RuntimeError("migration 0007 is broken")

    with pytest.raises(RuntimeError, match="0007"):
        provision.ensure_template(admin, template, base=base_name, run_id="r", build=broken)
    assert admin.mark_of(template) == (False, None)


def test_an_unsealed_template_from_a_crashed_build_is_rebuilt(admin: Admin, base_name: str) -> None:
    template = f"{base_name}_tpl"
    admin.create(template, Mark("template", "crashed", base_name, ready=False))
    assert build_template(admin, template, base_name)
    assert admin.mark_of(template)[1] == Mark("template", "run1", base_name, ready=True)


def test_clones_carry_the_schema_rows_and_settings(
    admin: Admin, base_name: str, run_id: str
) -> None:
    template = f"{base_name}_tpl"
    build_template(admin, template, base_name)
    worker = f"{base_name}_gw0"
    provision.clone(
        admin, template, worker, Mark("worker", run_id, base_name), {"timezone": "Asia/Tokyo"}
    )
    with connect_to(admin.server_url, worker) as conn:
        assert conn.execute("SELECT name FROM items").fetchall() == [("seed",)]
        assert conn.execute("SHOW timezone").fetchone() == ("Asia/Tokyo",)


def test_recloning_replaces_a_dead_or_same_runs_copy_only(
    admin: Admin, base_name: str, other_run: Admin, other_run_id: str, run_id: str
) -> None:
    template = f"{base_name}_tpl"
    build_template(admin, template, base_name)
    worker = f"{base_name}_gw0"
    provision.clone(admin, template, worker, Mark("worker", f"{run_id}x", base_name), {})
    provision.clone(admin, template, worker, Mark("worker", other_run_id, base_name), {})
    provision.clone(admin, template, worker, Mark("worker", other_run_id, base_name), {})
    with pytest.raises(ForeignDatabase):
        provision.clone(admin, template, worker, Mark("worker", run_id, base_name), {})


def test_an_unmarked_database_is_never_dropped(admin: Admin, base_name: str, run_id: str) -> None:
    name = f"{base_name}_gw0"
    create_unmarked(admin.server_url, name)
    with pytest.raises(ForeignDatabase, match="refusing to drop"):
        admin.drop(name, allowed=lambda mark: True)
    assert (
        ours(provision.sweep(admin, run_id=run_id, base=base_name, keep_template=""), base_name)
        == []
    )
    assert provision.drop_run_databases(admin, run_id) == []
    assert name in database_names(admin.server_url, base_name)


def test_a_superusers_session_on_a_leftover_is_named_and_blocks_no_other_run(
    admin: Admin, base_name: str, run_id: str, dead_run_id: str
) -> None:
    name = f"{base_name}_gw0"
    admin.create(name, Mark("worker", dead_run_id, base_name))
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and the local server's postgres user")
    session = subprocess.Popen(
        ["runuser", "-u", "postgres", "--", "psql", "-q", "-d", name, "-c", "SELECT pg_sleep(60)"]
    )
    try:
        wait_until(lambda: "postgres" in sessions_on(admin, name))
        swept = provision.sweep(admin, run_id=run_id, base=f"{base_name}_other", keep_template="")
        assert name not in swept, "kept, and the sweep went on"
        with pytest.raises(DatabaseInUse, match=r"of role 'postgres' .* may not end it"):
            admin.drop(name, allowed=lambda mark: True)
    finally:
        as_superuser(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )
        session.wait(timeout=60)
    admin.drop(name, allowed=lambda mark: True)
    assert database_names(admin.server_url, base_name) == set()


def test_a_leftover_of_another_role_is_named_and_blocks_no_other_run(
    admin: Admin, base_name: str, run_id: str, dead_run_id: str
) -> None:
    """A shared server: a run as another role (here the superuser) crashed and left this."""
    name = f"{base_name}_gw0"
    comment = Mark("worker", dead_run_id, base_name).to_comment(name)
    as_superuser(f'CREATE DATABASE "{name}"')
    try:
        as_superuser(f"COMMENT ON DATABASE \"{name}\" IS '{comment}'")
        swept = provision.sweep(admin, run_id=run_id, base=f"{base_name}_other", keep_template="")
        assert name not in swept, "kept, and the sweep went on"
        with pytest.raises(PermissionDenied, match=r"belongs to role 'postgres', not 'ci_kit'"):
            admin.drop(name, allowed=lambda mark: True)
        assert admin.mark_of(name) == (True, Mark("worker", dead_run_id, base_name))
    finally:
        as_superuser(f'DROP DATABASE IF EXISTS "{name}"')


def sessions_on(admin: Admin, name: str) -> list[str]:
    with connect_to(admin.server_url, "postgres") as conn:
        rows = conn.execute(
            "SELECT usename FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchall()
    return [user for (user,) in rows]


class TestSweepsOnAServerOfTheirOwn:
    """Sweeps judged by exactly what they took, on a server no concurrent test touches.

    On the shared server, a sweep finding the server-wide sweep lock held by another
    test's run sweeps nothing, and another run's sweep may take this test's crashed
    run first: ``server_url`` is the module's private server here, so ``admin``,
    ``base_name`` and the run fixtures all live there.
    """

    @pytest.fixture
    def server_url(self, private_url: URL) -> URL:
        return private_url

    def test_sweep_drops_a_dead_runs_databases_and_spares_a_live_runs(
        self,
        admin: Admin,
        base_name: str,
        other_run: Admin,
        other_run_id: str,
        run_id: str,
        dead_run_id: str,
    ) -> None:
        admin.create(f"{base_name}_gw0", Mark("worker", dead_run_id, base_name))
        admin.create(f"{base_name}_gw0_f1", Mark("fresh", dead_run_id, base_name))
        admin.create(f"{base_name}_r_gw0", Mark("worker", other_run_id, base_name))
        swept = provision.sweep(admin, run_id=run_id, base=base_name, keep_template="")
        assert sorted(swept) == [f"{base_name}_gw0", f"{base_name}_gw0_f1"]
        assert database_names(admin.server_url, base_name) == {f"{base_name}_r_gw0"}

    def test_a_database_left_invalid_by_an_interrupted_drop_is_swept_and_harms_no_other_run(
        self, admin: Admin, base_name: str, run_id: str, dead_run_id: str
    ) -> None:
        name = f"{base_name}_gw0"
        admin.create(name, Mark("worker", dead_run_id, base_name))
        # What PostgreSQL itself records first when a DROP DATABASE is interrupted (the
        # private server's role is its superuser).
        with connect_to(admin.server_url, "postgres") as conn:
            conn.execute("UPDATE pg_database SET datconnlimit = -2 WHERE datname = %s", (name,))
        swept = provision.sweep(admin, run_id=run_id, base=f"{base_name}_other", keep_template="")
        assert swept == [name]
        assert database_names(admin.server_url, base_name) == set()
        assert admin.role  # the connection survived: no FATAL

    def test_sweep_drops_older_templates_of_the_same_base_unless_in_use(
        self, admin: Admin, base_name: str, server_url: URL, run_id: str
    ) -> None:
        old, in_use, current = (f"{base_name}_tpl_{n}" for n in ("old", "used", "new"))
        for name in (old, in_use, current):
            build_template(admin, name, base_name)
        admin.close()  # releases this run's shared locks on all three templates
        user = Admin(server_url)
        user.lock(provision.template_use_lock(in_use), shared=True)
        sweeper = Admin(server_url)
        try:
            swept = provision.sweep(sweeper, run_id=run_id, base=base_name, keep_template=current)
        finally:
            sweeper.close()
            user.close()
        assert swept == [old]
        assert database_names(server_url, base_name) == {in_use, current}


def test_drop_run_databases_takes_only_this_runs_workers(
    admin: Admin, base_name: str, run_id: str, other_run: Admin, other_run_id: str
) -> None:
    build_template(admin, f"{base_name}_tpl", base_name)
    admin.create(f"{base_name}_gw0", Mark("worker", run_id, base_name))
    admin.create(f"{base_name}_gw1", Mark("worker", run_id, base_name))
    admin.create(f"{base_name}_x_gw0", Mark("worker", other_run_id, base_name))
    dropped = provision.drop_run_databases(admin, run_id)
    assert sorted(dropped) == [f"{base_name}_gw0", f"{base_name}_gw1"]
    assert database_names(admin.server_url, base_name) == {
        f"{base_name}_tpl",
        f"{base_name}_x_gw0",
    }


def test_drop_succeeds_with_clients_still_connected(
    admin: Admin, base_name: str, run_id: str
) -> None:
    name = f"{base_name}_gw0"
    admin.create(name, Mark("worker", run_id, base_name))
    client = connect_to(admin.server_url, name)
    admin.drop(name, allowed=lambda mark: mark.run == run_id)
    assert name not in database_names(admin.server_url, base_name)
    client.close()


def test_run_liveness_follows_the_run_lock(
    admin: Admin, other_run: Admin, other_run_id: str
) -> None:
    assert admin.run_is_alive(other_run_id)
    assert not admin.run_is_alive("nobody")
    other_run.close()
    # The server ends a closed client's backend, and frees its locks, a moment later.
    wait_until(lambda: not admin.run_is_alive(other_run_id), seconds=10)


def test_wrong_password_is_one_line_without_the_password(server_url: URL) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        Admin(server_url.set(password="wrong" + TEST_PASSWORD))
    message = str(caught.value)
    assert "password authentication failed for role 'ci_kit'" in message
    assert TEST_PASSWORD not in message
    assert "\n" not in message


def test_an_unreachable_server_is_one_line(server_url: URL) -> None:
    with pytest.raises(ServerUnreachable) as caught:
        Admin(server_url.set(host="127.0.0.1", port=1))
    assert "cannot reach PostgreSQL at" in str(caught.value)
    assert TEST_PASSWORD not in str(caught.value)


def test_libpq_parameters_in_the_url_are_used_and_its_connect_timeout_wins(
    server_url: URL,
) -> None:
    query = {"connect_timeout": "5", "sslmode": "disable", "application_name": "ci-kit-field"}
    admin = Admin(server_url.set(query=query))
    try:
        assert admin._scalar("SHOW application_name") == "ci-kit-field"
        assert admin._conn.info.get_parameters()["connect_timeout"] == "5"
    finally:
        admin.close()


def test_a_password_in_the_query_connects(server_url: URL) -> None:
    Admin(password_in_query(server_url, TEST_PASSWORD)).close()


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        ({"foo": "bar"}, 'invalid connection option "foo"'),
        ({"autocommit": "true"}, 'invalid connection option "autocommit"'),
        ({"connect_timeout": "soon"}, "bad value for connect_timeout: 'soon'"),
    ],
)
def test_a_parameter_libpq_refuses_is_one_line_naming_it(
    server_url: URL, query: dict[str, str], complaint: str
) -> None:
    with pytest.raises(InvalidDatabaseUrl) as caught:
        Admin(server_url.set(query=query))
    message = str(caught.value)
    assert complaint in message
    assert "\n" not in message
    assert not [form for form in secret_forms(server_url) if form in message]


def test_an_unreachable_server_hides_a_password_in_the_query(server_url: URL) -> None:
    url = password_in_query(server_url.set(port=1), "hunter2", sslmode="prefer")
    with pytest.raises(ServerUnreachable) as caught:
        Admin(url)
    assert "?password=***&sslmode=prefer" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "error", "says"),
    [
        (
            {"password": None},
            AuthenticationFailed,
            "asks role 'ci_kit' for a password and the URL has none",
        ),
        (
            {"query": {"sslmode": "bogus"}},
            InvalidDatabaseUrl,
            'invalid sslmode value: "bogus"; fix it',
        ),
        ({"port": 99999}, InvalidDatabaseUrl, 'invalid port number: "99999"; fix it in the URL'),
        (
            {"query": {"sslmode": "require"}},
            ConnectionRefused,
            "refused the connection: server does",
        ),
    ],
    ids=["no-password", "bad-sslmode", "port-out-of-range", "ssl-required"],
)
def test_a_server_that_answers_no_is_not_called_unreachable(
    server_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    change: dict[str, object],
    error: type[Exception],
    says: str,
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", os.devnull)
    with pytest.raises(error) as caught:
        Admin(server_url._replace(**change))
    assert says in str(caught.value)
    assert "is the server running" not in str(caught.value)
    assert not [form for form in secret_forms(TEST_PASSWORD) if form in str(caught.value)]


def test_a_role_without_createdb_is_told_how_to_fix_it(server_url: URL, base_name: str) -> None:
    admin = Admin(server_url.set(username="ci_kit_nocreatedb"))
    try:
        with pytest.raises(PermissionDenied, match="ALTER ROLE ci_kit_nocreatedb CREATEDB"):
            admin.create(f"{base_name}_gw0", Mark("worker", "r", base_name))
    finally:
        admin.close()


def test_url_of_keeps_the_password(admin: Admin) -> None:
    assert admin.url_of("x_test") == with_database(admin.server_url, "x_test")
    assert admin.url_of("x_test").password == TEST_PASSWORD


def test_only_one_run_sweeps_at_a_time(
    admin: Admin, base_name: str, server_url: URL, run_id: str, dead_run_id: str
) -> None:
    admin.create(f"{base_name}_gw0", Mark("worker", dead_run_id, base_name))
    sweeper = Admin(server_url)
    try:
        wait_until(lambda: sweeper.try_lock("ci-kit:sweep"))  # a concurrent sweep ends soon
        assert provision.sweep(admin, run_id=run_id, base=base_name, keep_template="") == []
        # The lock is server-wide: no other run's sweep took it meanwhile either.
        assert database_names(server_url, base_name) == {f"{base_name}_gw0"}
    finally:
        sweeper.close()

    def swept_once_free() -> bool:
        # Skipped while another run sweeps (the closed sweeper's lock, freed a moment
        # after its close, or a concurrent test's run): that run takes it as well.
        provision.sweep(admin, run_id=run_id, base=base_name, keep_template="")
        return database_names(server_url, base_name) == set()

    wait_until(swept_once_free, seconds=10)
