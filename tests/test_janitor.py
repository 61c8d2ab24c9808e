"""The janitor on a real PostgreSQL server: what a sweep, ``clean`` and a run's end take,
and everything they leave: a live run's databases, a person's, another role's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from sqlalchemy.engine import URL

from ci_kit import janitor
from ci_kit.admin import Admin
from ci_kit.errors import DatabaseInUse, ForeignDatabase, PermissionDenied
from ci_kit.locks import template_use_lock
from ci_kit.marks import Mark
from tests.helpers.runs import wait_until
from tests.helpers.server import (
    as_superuser,
    build_template,
    connect_to,
    create_unmarked,
    database_names,
    superuser_session_on,
)


def ours(swept: list[str], base: str) -> list[str]:
    """What a sweep took of this test's databases.

    A sweep is server-wide, and under xdist other tests leave crashed runs' databases
    too (on purpose); and their sweeps, or their inner runs', may take this test's
    crashed run first. So tests judge a sweep by their own base's names and by what
    is left on the server.
    """
    return sorted(name for name in swept if name.startswith(base))


@contextmanager
def no_sweeps(server_url: URL) -> Iterator[None]:
    """No run's sweep or ``clean`` while a test sets a crashed run's leftover up.

    On the shared server every kit run the other tests start sweeps, and a sweep takes
    every crashed run's databases, server-wide: a leftover is anyone's to drop until
    what the test wants of it (a rename, a session on it) is in place.
    """
    guard = Admin(server_url)
    try:
        guard.lock(janitor.SWEEP_LOCK)
        yield
    finally:
        guard.close()


def test_a_leftover_a_person_renamed_to_keep_is_theirs(
    admin: Admin, base_name: str, run_id: str, dead_run_id: str
) -> None:
    kept = f"{base_name}_kept"
    with no_sweeps(admin.server_url), connect_to(admin.server_url, "postgres") as conn:
        admin.create(f"{base_name}_gw0", Mark("worker", dead_run_id, base_name))
        conn.execute(f'ALTER DATABASE "{base_name}_gw0" RENAME TO "{kept}"')
    swept = janitor.sweep(admin, run_id=run_id, base=f"{base_name}_x", keep_template="")
    assert ours(swept, base_name) == []
    assert kept not in {verdict.name for verdict in janitor.clean(admin, dry_run=True)}
    with pytest.raises(ForeignDatabase):
        admin.drop(kept, allowed=lambda mark: True)
    assert database_names(admin.server_url, base_name) == {kept}


def test_an_unmarked_database_is_never_dropped(admin: Admin, base_name: str, run_id: str) -> None:
    name = f"{base_name}_gw0"
    create_unmarked(admin.server_url, name)
    with pytest.raises(ForeignDatabase, match="refusing to drop"):
        admin.drop(name, allowed=lambda mark: True)
    assert (
        ours(janitor.sweep(admin, run_id=run_id, base=base_name, keep_template=""), base_name) == []
    )
    assert janitor.drop_run_databases(admin, run_id) == []
    assert name in database_names(admin.server_url, base_name)


def test_a_superusers_session_on_a_leftover_is_named_and_blocks_no_other_run(
    admin: Admin, base_name: str, run_id: str, dead_run_id: str
) -> None:
    name = f"{base_name}_gw0"
    with ExitStack() as session:
        with no_sweeps(admin.server_url):  # until the superuser's session is on it
            admin.create(name, Mark("worker", dead_run_id, base_name))
            session.enter_context(superuser_session_on(admin.server_url, name))
        swept = janitor.sweep(admin, run_id=run_id, base=f"{base_name}_other", keep_template="")
        assert name not in swept, "kept, and the sweep went on"
        with pytest.raises(DatabaseInUse, match=r"of role 'postgres' .* may not end it"):
            admin.drop(name, allowed=lambda mark: True)
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
        swept = janitor.sweep(admin, run_id=run_id, base=f"{base_name}_other", keep_template="")
        assert name not in swept, "kept, and the sweep went on"
        with pytest.raises(PermissionDenied, match=r"belongs to role 'postgres', not 'ci_kit'"):
            admin.drop(name, allowed=lambda mark: True)
        assert admin.mark_of(name) == (True, Mark("worker", dead_run_id, base_name))
    finally:
        as_superuser(f'DROP DATABASE IF EXISTS "{name}"')


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
        swept = janitor.sweep(admin, run_id=run_id, base=base_name, keep_template="")
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
        swept = janitor.sweep(admin, run_id=run_id, base=f"{base_name}_other", keep_template="")
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
        user.lock(template_use_lock(in_use), shared=True)
        sweeper = Admin(server_url)
        try:
            swept = janitor.sweep(sweeper, run_id=run_id, base=base_name, keep_template=current)
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
    dropped = janitor.drop_run_databases(admin, run_id)
    assert sorted(dropped) == [f"{base_name}_gw0", f"{base_name}_gw1"]
    assert database_names(admin.server_url, base_name) == {
        f"{base_name}_tpl",
        f"{base_name}_x_gw0",
    }


def test_only_one_run_sweeps_at_a_time(
    admin: Admin, base_name: str, server_url: URL, run_id: str, dead_run_id: str
) -> None:
    sweeper = Admin(server_url)
    try:
        wait_until(lambda: sweeper.try_lock(janitor.SWEEP_LOCK))  # a concurrent sweep ends soon
        admin.create(f"{base_name}_gw0", Mark("worker", dead_run_id, base_name))
        assert janitor.sweep(admin, run_id=run_id, base=base_name, keep_template="") == []
        # The lock is server-wide: no other run's sweep took it meanwhile either.
        assert database_names(server_url, base_name) == {f"{base_name}_gw0"}
    finally:
        sweeper.close()

    def swept_once_free() -> bool:
        # Skipped while another run sweeps (the closed sweeper's lock, freed a moment
        # after its close, or a concurrent test's run): that run takes it as well.
        janitor.sweep(admin, run_id=run_id, base=base_name, keep_template="")
        return database_names(server_url, base_name) == set()

    wait_until(swept_once_free, seconds=10)
