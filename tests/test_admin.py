"""``ci_kit.admin`` on a real PostgreSQL server: marks, locks, templates, clones and drops.

The last tests are the cases where something outside the kit acts at the worst
moment (another run drops the database first, a session the kit may not end holds
it on): races, refusals, waits.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL

from ci_kit.admin import Admin, ensure_database
from ci_kit.cloning import clone, ensure_template
from ci_kit.dburl import render, with_database
from ci_kit.errors import DiskFull, ForeignDatabase, PermissionDenied
from ci_kit.marks import Mark
from ci_kit.sessions import kit_session_settings
from tests.helpers.projects import write_alembic_project
from tests.helpers.runs import wait_until
from tests.helpers.server import (
    TEST_PASSWORD,
    as_superuser,
    build_template,
    connect_to,
    database_names,
    drop_leftover,
    make_table,
)


def test_marks_round_trip_and_ignore_foreign_comments() -> None:
    mark = Mark("worker", "abc", "app_test")
    assert Mark.from_comment(mark.to_comment("app_test_gw0"), "app_test_gw0") == mark
    assert Mark.from_comment(mark.to_comment("app_test_gw0"), "kept_for_debugging") is None
    assert Mark.from_comment(None, "app_test") is None
    assert Mark.from_comment("production data, do not touch", "app_test") is None
    assert Mark.from_comment("ci-kit {not json", "app_test") is None


def test_ensure_database_creates_once_and_leaves_it_unmarked(
    admin: Admin, server_url: URL, base_name: str
) -> None:
    """A person's database (``ci_kit server --database``, the deploy's): never the kit's."""
    name = f"{base_name}_dev"
    try:
        assert ensure_database(server_url, name) is True
        assert ensure_database(server_url, name) is False  # there already: nothing done
        assert name in database_names(server_url, base_name)
        assert admin.mark_of(name) == (True, None)
    finally:
        drop_leftover(server_url, name)


def test_template_is_built_once_then_reused(admin: Admin, base_name: str) -> None:
    template = f"{base_name}_tpl"
    assert build_template(admin, template, base_name)
    assert not build_template(admin, template, base_name)
    exists, mark = admin.mark_of(template)
    assert exists
    assert mark == Mark("template", "run1", base_name, ready=True)


def test_two_runs_building_at_once_build_the_template_once_and_the_waiting_say_so(
    server_url: URL, base_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    template = f"{base_name}_tpl"
    results: list[bool] = []
    caplog.set_level(logging.INFO, logger="ci_kit")

    def slow_build(url: URL) -> None:
        time.sleep(1)
        make_table(url, str(url.database))

    def run(run_id: str) -> None:
        admin = Admin(server_url)
        try:
            results.append(
                ensure_template(
                    admin,
                    template,
                    base=base_name,
                    run_id=run_id,
                    build=slow_build,
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
    said = [r.getMessage() for r in caplog.records if r.name.startswith("ci_kit")]
    assert said == [f"waiting for another run to finish building template {template}"] * 2


def test_a_failed_build_leaves_no_template(admin: Admin, base_name: str) -> None:
    template = f"{base_name}_tpl"

    def broken(url: URL) -> None:
        raise RuntimeError("migration 0007 is broken")

    with pytest.raises(RuntimeError, match="0007"):
        ensure_template(admin, template, base=base_name, run_id="r", build=broken)
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
    clone(admin, template, worker, Mark("worker", run_id, base_name), {"timezone": "Asia/Tokyo"})
    with connect_to(admin.server_url, worker) as conn:
        assert conn.execute("SELECT name FROM items").fetchall() == [("seed",)]
        assert conn.execute("SHOW timezone").fetchone() == ("Asia/Tokyo",)


def test_recloning_replaces_a_dead_or_same_runs_copy_only(
    admin: Admin, base_name: str, other_run: Admin, other_run_id: str, run_id: str
) -> None:
    template = f"{base_name}_tpl"
    build_template(admin, template, base_name)
    worker = f"{base_name}_gw0"
    clone(admin, template, worker, Mark("worker", f"{run_id}x", base_name), {})
    clone(admin, template, worker, Mark("worker", other_run_id, base_name), {})
    clone(admin, template, worker, Mark("worker", other_run_id, base_name), {})
    with pytest.raises(ForeignDatabase):
        clone(admin, template, worker, Mark("worker", run_id, base_name), {})


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


def test_a_database_another_run_drops_meanwhile_is_no_error(
    admin: Admin, server_url: URL, base_name: str, run_id: str
) -> None:
    name = f"{base_name}_gw0"
    admin.create(name, Mark("worker", run_id, base_name))

    def dropped_by_another_run(mark: Mark) -> bool:
        """Between the kit's look at the mark and its drop, another run's sweep drops it."""
        with connect_to(server_url, "postgres") as other:
            other.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        return mark.run == run_id

    admin.drop(name, allowed=dropped_by_another_run)
    assert database_names(server_url, name) == set()


def test_a_drop_blocked_by_a_session_without_a_role_waits_for_it_to_end(
    admin: Admin, server_url: URL, base_name: str, run_id: str
) -> None:
    """Autovacuum's workers have no role, and FORCE may not end them; they end in moments.

    A session whose role has been dropped is one too, here on demand: it ends as soon
    as the kit is seen waiting, and the drop must then go through.
    """
    name, role = f"{base_name}_gw0", f"{base_name}_gone"
    admin.create(name, Mark("worker", run_id, base_name))
    as_superuser(f"CREATE ROLE {role} LOGIN PASSWORD 'gone'")
    try:
        roleless = psycopg.connect(
            host=server_url.host, port=server_url.port, user=role, password="gone", dbname=name
        )
    finally:
        as_superuser(f"DROP ROLE {role}")
    kit = admin._conn.info.backend_pid
    ended_while_waiting: list[bool] = []

    def end_it_once_the_kit_waits() -> None:
        with connect_to(server_url, "postgres") as watcher:

            def waiting() -> bool:
                row = watcher.execute(
                    "SELECT query FROM pg_stat_activity WHERE pid = %s", (kit,)
                ).fetchone()
                return row is not None and "FROM pg_stat_activity" in str(row[0])

            wait_until(waiting, seconds=10)
        roleless.close()
        ended_while_waiting.append(True)

    watcher = threading.Thread(target=end_it_once_the_kit_waits)
    watcher.start()
    try:
        admin.drop(name, allowed=lambda mark: mark.run == run_id)
    finally:
        watcher.join(timeout=30)
        roleless.close()
    assert ended_while_waiting == [True]
    assert database_names(server_url, name) == set()


def test_a_build_that_overwrote_the_templates_comment_and_failed_leaves_nothing(
    admin: Admin, server_url: URL, base_name: str
) -> None:
    """A migration may commit its own COMMENT ON DATABASE: the mark is gone, the oid is not."""
    template = f"{base_name}_tpl"

    def comments_then_fails(url: URL) -> None:
        with connect_to(server_url, "postgres") as conn:
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS 'the application database'").format(
                    sql.Identifier(template)
                )
            )
        raise RuntimeError("migration 0002 is broken")

    with pytest.raises(RuntimeError, match="migration 0002 is broken"):
        ensure_template(admin, template, base=base_name, run_id="r", build=comments_then_fails)
    assert database_names(server_url, template) == set()


def test_a_failed_builds_drop_spares_a_database_made_anew_under_its_name(
    admin: Admin, server_url: URL, base_name: str
) -> None:
    """Only the oid this run created is dropped: a database made since is someone else's."""
    template = f"{base_name}_tpl"
    created = admin.create(template, Mark("template", "r", base_name, ready=False))
    drop_leftover(server_url, template)
    with connect_to(server_url, "postgres") as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
    admin.drop_created(template, created)
    assert database_names(server_url, template) == {template}


COMMENTING_MIGRATION = """
from alembic import op

revision = "0001"
down_revision = None

def upgrade():
    op.execute("CREATE TABLE widget (id int)")
    with op.get_context().autocommit_block():
        op.execute(
            "DO $$ BEGIN EXECUTE format("
            "'COMMENT ON DATABASE %I IS ''the app database''', current_database()); END $$"
        )
    raise RuntimeError("migration 0001 is broken")
"""


def test_a_migration_that_comments_on_its_database_then_fails_shows_its_own_error(
    pytester: pytest.Pytester, server_url: URL, base_name: str
) -> None:
    write_alembic_project(pytester, base_name, COMMENTING_MIGRATION)
    pytester.makepyfile(test_nothing="def test_nothing(db_session):\n    pass\n")
    url = render(server_url.set(database=base_name))
    for _ in range(2):  # and the next run: the same error, not a leftover in its way
        result = pytester.runpytest_subprocess("-n", "2", "--ci-kit-url", url)
        output = result.stdout.str() + result.stderr.str()
        assert result.ret == pytest.ExitCode.USAGE_ERROR, output
        assert "RuntimeError: migration 0001 is broken" in output
        assert "refusing to drop" not in output
        assert "Traceback" not in output
        assert database_names(server_url, base_name) == set()


def test_a_database_whose_mark_cannot_be_written_is_dropped_again(
    admin: Admin, server_url: URL, base_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unmarked, no sweep would ever take it: the oid the CREATE made is dropped instead."""

    def disk_full(name: str, mark: Mark) -> None:
        raise DiskFull(f"marking database {name!r} failed: No space left on device")

    monkeypatch.setattr(admin, "set_mark", disk_full)
    with pytest.raises(DiskFull):
        admin.create(f"{base_name}_gw0", Mark("worker", "r", base_name))
    assert database_names(server_url, base_name) == set()


@pytest.mark.parametrize(
    ("version", "unknown_to_it"),
    [(130011, {"idle_session_timeout", "transaction_timeout"}), (150018, {"transaction_timeout"})],
)
def test_the_kits_sessions_set_only_what_the_server_knows(
    version: int, unknown_to_it: set[str]
) -> None:
    on_17 = kit_session_settings(170002)
    assert on_17["default_transaction_read_only"] == "off"
    assert {name for name, value in on_17.items() if value == "0"} == {
        "statement_timeout",
        "lock_timeout",
        "idle_in_transaction_session_timeout",
        "idle_session_timeout",
        "transaction_timeout",
    }
    assert set(on_17) - set(kit_session_settings(version)) == unknown_to_it


def test_the_kits_session_overrides_pgoptions_and_a_test_connection_does_not(
    monkeypatch: pytest.MonkeyPatch, server_url: URL
) -> None:
    monkeypatch.setenv("PGOPTIONS", "-c default_transaction_read_only=on -c statement_timeout=5ms")
    admin = Admin(server_url)
    try:
        assert admin._scalar("SHOW default_transaction_read_only") == "off"
        assert admin._scalar("SHOW statement_timeout") == "0"
    finally:
        admin.close()
    with connect_to(server_url, "postgres") as theirs:
        assert theirs.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
