"""A run's life on real servers: a preparation that fails, a cleanup that cannot finish."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ci_kit.config import load_config
from ci_kit.dburl import render, secret_forms
from ci_kit.errors import InvalidDatabaseUrl, MigrationFailed
from ci_kit.lifecycle import prepare_run
from ci_kit.postgres import postmaster
from ci_kit.workers import WorkerDatabases
from tests.helpers.clusters import initdb_base, process_gone
from tests.helpers.server import TEST_PASSWORD, database_names, superuser_session_on


def test_a_preparation_that_fails_stops_and_deletes_the_embedded_server(
    tmp_path: Path, kit_log: list[str]
) -> None:
    (tmp_path / "broken_models.py").write_text(
        "from sqlalchemy import DDL, Column, Integer, MetaData, Table, event\n"
        "metadata = MetaData()\n"
        "items = Table('items', metadata, Column('id', Integer, primary_key=True))\n"
        "event.listen(items, 'after_create', DDL('ALTER TABLE items ADD COLUMN x no_such_type'))\n"
    )
    config = load_config(
        tmp_path, {"server": "embedded", "schema": "broken_models:metadata"}, {}, {}
    )
    commands = kit_log
    with pytest.raises(MigrationFailed, match='type "no_such_type" does not exist'):
        prepare_run(config)
    assert any(command.endswith("-W start") for command in commands), "it had started"
    assert not initdb_base(commands).exists()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_maintenance_db_that_does_not_exist_is_one_line_naming_the_setting(
    tmp_path: Path, server_url: URL
) -> None:
    environ = {"CI_KIT_DATABASE_URL": render(server_url.set(database="app_test"))}
    config = load_config(tmp_path, {"maintenance-db": "no_such_db_xyz"}, environ, {})
    with pytest.raises(InvalidDatabaseUrl) as caught:
        prepare_run(config)
    message = str(caught.value)
    assert message.startswith("database 'no_such_db_xyz' does not exist at ")
    assert message.endswith("set [tool.ci-kit] maintenance-db to one that exists")
    assert not [form for form in secret_forms(TEST_PASSWORD) if form in message]


def test_a_run_whose_cleanup_cannot_finish_warns_in_one_line_and_drops_the_rest(
    tmp_path: Path, server_url: URL, base_name: str, kit_log: list[str]
) -> None:
    environ = {"CI_KIT_DATABASE_URL": render(server_url.set(database=base_name))}
    run = prepare_run(load_config(tmp_path, {}, environ, {}))
    stuck, free = WorkerDatabases(run.plan, "gw0"), WorkerDatabases(run.plan, "gw1")
    stuck.create()
    free.create()
    with superuser_session_on(server_url, stuck.name):
        stuck.close()  # a worker's cleanup: a warning, the controller's goes on
        dropped = run.close()
    free.close()
    assert dropped == [free.name]
    (kept,) = [line for line in kit_log if line.startswith(f"kept {stuck.name}: ")]
    assert "of role 'postgres'" in kept
    assert kept.endswith("the next run's sweep drops it")
    assert [line for line in kit_log if line.startswith(f"could not drop {stuck.name} (")]
    assert stuck.name in database_names(server_url, base_name)  # the next sweep's


def test_a_run_on_its_own_ephemeral_server_drops_nothing_and_leaves_nothing(
    tmp_path: Path, kit_log: list[str]
) -> None:
    """The cluster is deleted whole: dropping its databases first only cost the run time."""
    run = prepare_run(load_config(tmp_path, {"server": "embedded"}, {}, {}))
    assert run.plan.disposable
    worker = WorkerDatabases(run.plan, "gw0")
    worker.create()
    worker.close()
    assert worker.name in database_names(run.plan.server_url, run.plan.base_name)
    pid = postmaster(initdb_base(kit_log) / "data")
    assert run.close() == []
    assert pid is not None
    assert process_gone(pid)
    assert not initdb_base(kit_log).exists()


@pytest.mark.parametrize("reuse", [False, True], ids=["configured", "kept-embedded"])
def test_a_run_on_a_server_that_outlives_it_drops_its_databases(
    request: pytest.FixtureRequest, tmp_path: Path, server_url: URL, base_name: str, reuse: bool
) -> None:
    if reuse:
        project: Path = request.getfixturevalue("private_project")
        config = load_config(project, {"server": "embedded", "reuse": True}, {}, {})
    else:
        environ = {"CI_KIT_DATABASE_URL": render(server_url.set(database=base_name))}
        config = load_config(tmp_path, {}, environ, {})
    run = prepare_run(config)
    try:
        assert not run.plan.disposable
        worker = WorkerDatabases(run.plan, "gw0")
        worker.create()
        worker.close()
        assert worker.name not in database_names(run.plan.server_url, run.plan.base_name)
    finally:
        run.close()
