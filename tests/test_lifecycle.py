"""A run's life on real servers: a preparation that fails."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ci_kit.config import load_config
from ci_kit.dburl import render, secret_forms
from ci_kit.errors import InvalidDatabaseUrl, SchemaSourceError
from ci_kit.lifecycle import prepare_run
from tests.helpers.clusters import initdb_base
from tests.helpers.server import TEST_PASSWORD


def test_a_preparation_that_fails_stops_and_deletes_the_embedded_server(
    tmp_path: Path, kit_log: list[str]
) -> None:
    config = load_config(
        tmp_path, {"server": "embedded", "schema": "no_such_module_xyz:metadata"}, {}, {}
    )
    commands = kit_log
    with pytest.raises(SchemaSourceError, match="does not import"):
        prepare_run(config)
    assert any(command.endswith("-w -t 60 start") for command in commands), "it had started"
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
