"""A run's life on real servers: a preparation that fails, and a worker's own databases."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ci_kit.config import load_config
from ci_kit.dburl import render, secret_forms, with_database
from ci_kit.errors import InvalidDatabaseUrl, SchemaSourceError
from ci_kit.lifecycle import PreparedRun, WorkerDatabases, prepare_run
from tests.conftest import TEST_PASSWORD, create_unmarked, database_names
from tests.test_postgres import initdb_base


def quiet(_: str) -> None:
    pass


def test_a_preparation_that_fails_stops_and_deletes_the_embedded_server(tmp_path: Path) -> None:
    config = load_config(
        tmp_path, {"server": "embedded", "schema": "no_such_module_xyz:metadata"}, {}, {}
    )
    commands: list[str] = []
    with pytest.raises(SchemaSourceError, match="does not import"):
        prepare_run(config, log=quiet, echo=commands.append)
    assert any(command.endswith("-w -t 60 start") for command in commands), "it had started"
    assert not initdb_base(commands).exists()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_maintenance_db_that_does_not_exist_is_one_line_naming_the_setting(
    tmp_path: Path, server_url: URL
) -> None:
    environ = {"CI_KIT_DATABASE_URL": render(server_url.set(database="app_test"))}
    config = load_config(tmp_path, {"maintenance-db": "no_such_db_xyz"}, environ, {})
    with pytest.raises(InvalidDatabaseUrl) as caught:
        prepare_run(config, log=quiet)
    message = str(caught.value)
    assert message.startswith("database 'no_such_db_xyz' does not exist at ")
    assert message.endswith("set [tool.ci-kit] maintenance-db to one that exists")
    assert not [form for form in secret_forms(TEST_PASSWORD) if form in message]


@pytest.fixture
def run(tmp_path: Path, server_url: URL, base_name: str) -> Iterator[PreparedRun]:
    """A prepared run on the external server, closed afterwards."""
    environ = {"CI_KIT_DATABASE_URL": render(server_url.set(database=base_name))}
    prepared = prepare_run(load_config(tmp_path, {}, environ, {}), log=quiet)
    yield prepared
    prepared.close()


def test_a_worker_drops_only_the_databases_it_created(
    run: PreparedRun, server_url: URL, base_name: str
) -> None:
    first, second = WorkerDatabases(run.plan, "gw0"), WorkerDatabases(run.plan, "gw1")
    try:
        first.create()
        theirs = second.create()
        create_unmarked(server_url, f"{base_name}_dev")
        first.drop(theirs)
        first.drop(with_database(server_url, f"{base_name}_dev"))
        assert {f"{base_name}_gw1", f"{base_name}_dev"} <= database_names(server_url, base_name)
    finally:
        first.close()
        second.close()


def test_closing_a_worker_twice_is_harmless(run: PreparedRun, server_url: URL) -> None:
    worker = WorkerDatabases(run.plan, "gw0")
    worker.create()
    worker.create_fresh()
    worker.close()
    worker.close()
    assert database_names(server_url, worker.name) == set()
