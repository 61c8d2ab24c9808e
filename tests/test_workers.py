"""A worker's own databases on a real server: what it creates, drops and leaves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ci_kit.config import load_config
from ci_kit.dburl import render, with_database
from ci_kit.lifecycle import PreparedRun, prepare_run
from ci_kit.workers import WorkerDatabases
from tests.helpers.server import create_unmarked, database_names


@pytest.fixture
def run(tmp_path: Path, server_url: URL, base_name: str) -> Iterator[PreparedRun]:
    """A prepared run on the external server, closed afterwards."""
    environ = {"CI_KIT_DATABASE_URL": render(server_url.set(database=base_name))}
    prepared = prepare_run(load_config(tmp_path, {}, environ, {}))
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
