import logging.config
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

ALEMBIC_INI = Path(__file__).parents[1] / "alembic.ini"


@pytest.mark.db_isolation("fresh")
def test_migrations_go_down_to_base_and_back_up(db_connection, monkeypatch):
    # env.py's fileConfig() would disable the app's loggers for the rest of the run.
    monkeypatch.setattr(logging.config, "fileConfig", lambda *args, **kwargs: None)
    config = Config(ALEMBIC_INI)
    config.attributes["connection"] = db_connection
    command.downgrade(config, "base")
    assert set(inspect(db_connection).get_table_names()) == {"alembic_version"}
    command.upgrade(config, "head")
    assert {"notes", "tags"} <= set(inspect(db_connection).get_table_names())
