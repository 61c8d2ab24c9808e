"""``provision.Admin`` against other sessions and other servers: races, refusals, waits.

Beside ``test_provision.py``: the same module under test, the cases where something
outside the kit acts at the worst moment.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL

from ci_kit.errors import AuthenticationFailed, PostgresNotFound
from ci_kit.postgres import EmbeddedPostgres, find_binaries
from ci_kit.provision import Admin, Mark
from tests.conftest import as_superuser, connect_to, database_names, wait_until


@pytest.fixture
def trusting_server() -> Iterator[URL]:
    """An embedded server: trust authentication, so it names a role it does not know."""
    try:
        binaries = find_binaries(allow_wheel=False)
    except PostgresNotFound:
        pytest.skip("no system PostgreSQL installed")
    with EmbeddedPostgres(binaries) as server:
        assert server.url is not None
        yield server.url


def test_a_role_the_server_does_not_know_is_named_with_the_fix(trusting_server: URL) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        Admin(trusting_server.set(username="nobody_here"))
    message = str(caught.value)
    assert message.startswith("the server at postgresql+psycopg://nobody_here@/postgres?host=")
    assert message.endswith(
        "refused role 'nobody_here': role \"nobody_here\" does not exist; "
        "check the role name and pg_hba.conf"
    )


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
