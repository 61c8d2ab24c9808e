"""The baseline: how the inspiring team ran its suite before the kit existed.

Each xdist worker creates its own database and runs ``alembic upgrade head`` in it
(their 665 s run spent 453 s there); every test commits for real, and afterwards the
tables are dropped and created again from the metadata. This is a pytest plugin that
generated suites load with ``pytest_plugins``; it reads the server from
``BENCH_ADMIN_URL`` and the schema from the suite's ``history/alembic.ini`` and
``bench_schema.metadata``. It is a benchmark baseline, not a recommendation.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.sql import SQL, Identifier
from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import Engine, make_url

ADMIN_URL_ENV = "BENCH_ADMIN_URL"
RunSql = Callable[..., list[Any]]


@pytest.fixture(scope="session")
def inspired_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """This worker's database, created and migrated by the worker itself."""
    from alembic import command
    from alembic.config import Config

    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    admin_url = make_url(os.environ[ADMIN_URL_ENV])
    name = f"bench_inspired_{worker}"
    _admin(admin_url, SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)"), name)
    _admin(admin_url, SQL("CREATE DATABASE {}"), name)
    url = admin_url.set(database=name)
    config = Config(str(request.config.rootpath / "history" / "alembic.ini"))
    # ConfigParser interpolates %: a socket path in the URL arrives %-encoded
    rendered = url.render_as_string(hide_password=False).replace("%", "%%")
    config.set_main_option("sqlalchemy.url", rendered)
    command.upgrade(config, "head")
    engine = create_engine(url)
    yield engine
    engine.dispose()
    _admin(admin_url, SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)"), name)


@pytest.fixture(scope="session")
def inspired_metadata() -> MetaData:
    metadata: MetaData = importlib.import_module("bench_schema").metadata
    return metadata


@pytest.fixture
def sql(inspired_engine: Engine, inspired_metadata: MetaData) -> Iterator[RunSql]:
    """Real commits; afterwards every table is dropped and created again."""
    with inspired_engine.connect() as connection:

        def run(statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
            result = connection.exec_driver_sql(statement, params)
            rows = list(result.fetchall()) if result.returns_rows else []
            connection.commit()
            return rows

        yield run
    inspired_metadata.drop_all(inspired_engine)
    inspired_metadata.create_all(inspired_engine)


def _admin(url: Any, statement: SQL, name: str) -> None:
    params = {"host": url.query.get("host", url.host), "port": url.query.get("port", url.port)}
    with psycopg.connect(
        user=url.username,
        password=url.password,
        dbname=url.database,
        autocommit=True,
        **{k: v for k, v in params.items() if v is not None},
    ) as connection:
        connection.execute(statement.format(Identifier(name)))
