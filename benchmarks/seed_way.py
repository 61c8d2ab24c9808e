"""The seed's way: how a real team ran its suite before the kit, as a pytest plugin.

The benchmark loads it *instead of* the kit (``-p no:ci_kit -p benchmarks.seed_way``)
so the sample suite runs unchanged on the team's own recipe: every pytest process
that runs tests (a serial run, or each xdist worker) creates its own database and
runs ``alembic upgrade head`` in it; tests commit for real; after every test that
touched the database the schema is dropped and migrated again (``schema``), or the
tables that migrations leave empty are truncated (``truncate``; the schema is
rebuilt instead when a test migrated it off head). It provides the
kit's fixture names (``db_url``, ``db_engine``, ``db_connection``, ``db_session``)
and accepts the kit's ``db_isolation`` marker, which it ignores: the team had no
such marks, every test got the same treatment. A benchmark baseline, not advice.

Configured by environment, as the team's CI was:

- ``BENCH_SEED_ADMIN_URL`` (required): a maintenance database, as a role with CREATEDB.
- ``BENCH_SEED_BASE`` (default ``seed_way_test``): the database name, ``<base>_gwN``
  under xdist; never one of the kit's, so the two never meet.
- ``BENCH_SEED_RESET``: ``schema`` (default) or ``truncate``.
- ``BENCH_SEED_ALEMBIC_INI`` (default ``<rootdir>/alembic.ini``): the migrations.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast, get_args

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from psycopg import sql
from sqlalchemy import create_engine, exists, inspect, select, table, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from ci_kit import CiKitError, connect_kwargs, parse_database_url, render, with_database

ADMIN_URL_ENV = "BENCH_SEED_ADMIN_URL"
BASE_ENV = "BENCH_SEED_BASE"
RESET_ENV = "BENCH_SEED_RESET"
ALEMBIC_INI_ENV = "BENCH_SEED_ALEMBIC_INI"
DEFAULT_BASE = "seed_way_test"

Reset = Literal["schema", "truncate"]
RESETS: tuple[str, ...] = get_args(Reset)

DATABASE_FIXTURES = frozenset({"db_url", "db_engine", "db_connection", "db_session"})
"""A test that used any of these, even only the URL, may have committed something."""

LOCK_TIMEOUT = "30s"
"""A connection a test leaked holding locks fails the reset instead of hanging the run."""


@dataclass(frozen=True)
class Settings:
    admin_url: URL
    base: str
    reset: Reset
    alembic_ini: Path


@dataclass(frozen=True)
class Migrated:
    """The database right after the migrations, what ``truncate`` resets towards."""

    heads: frozenset[str]
    empty_tables: list[str]


SETTINGS_KEY = pytest.StashKey[Settings]()
_MIGRATED_KEY = pytest.StashKey[Migrated]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "db_isolation(mode): the kit's marker, accepted and ignored by the seed's way"
    )
    config.stash[SETTINGS_KEY] = settings_from_environment(config.rootpath)


def settings_from_environment(rootpath: Path) -> Settings:
    """Read once, in every process: a bad setting stops the run with one line."""
    raw_url = os.environ.get(ADMIN_URL_ENV)
    if not raw_url:
        raise pytest.UsageError(f"seed_way: set {ADMIN_URL_ENV} to a maintenance database URL")
    reset = os.environ.get(RESET_ENV) or "schema"
    if reset not in RESETS:
        raise pytest.UsageError(
            f"seed_way: {RESET_ENV} takes one of {', '.join(RESETS)}, not {reset!r}"
        )
    base = os.environ.get(BASE_ENV) or DEFAULT_BASE
    if "test" not in base.lower():  # it is dropped WITH (FORCE)
        raise pytest.UsageError(
            f"seed_way: refusing base database name {base!r}: it does not contain 'test'"
        )
    try:
        admin_url = parse_database_url(raw_url)
    except CiKitError as error:  # one line, never the password
        raise pytest.UsageError(f"seed_way: {error}") from None
    ini = Path(os.environ.get(ALEMBIC_INI_ENV) or rootpath / "alembic.ini")
    return Settings(admin_url, base, cast(Reset, reset), ini)


@pytest.fixture(scope="session")
def db_url(pytestconfig: pytest.Config) -> Iterator[URL]:
    """This process's database, created and migrated by the process itself, password intact."""
    settings = pytestconfig.stash[SETTINGS_KEY]
    worker = _worker_id(pytestconfig)
    name = f"{settings.base}_{worker}" if worker else settings.base
    _admin(settings.admin_url, "DROP DATABASE IF EXISTS {} WITH (FORCE)", name)
    _admin(settings.admin_url, "CREATE DATABASE {}", name)
    try:
        url = with_database(settings.admin_url, name)
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                migrate(connection, settings.alembic_ini)
                if settings.reset == "truncate":
                    pytestconfig.stash[_MIGRATED_KEY] = Migrated(
                        alembic_heads(connection), empty_tables(connection)
                    )
        finally:
            engine.dispose()
        yield url
    finally:
        _admin(settings.admin_url, "DROP DATABASE IF EXISTS {} WITH (FORCE)", name)


@pytest.fixture(scope="session")
def db_engine(db_url: URL) -> Iterator[Engine]:
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db_connection(db_engine: Engine) -> Iterator[Connection]:
    """A plain connection: whatever the test commits stays until the reset."""
    with db_engine.connect() as connection:
        yield connection


@pytest.fixture
def db_session(db_connection: Connection) -> Iterator[Session]:
    """A session that owns the connection's transaction, so ``commit()`` is a real one.

    ``control_fully``: SQLAlchemy's default would leave a transaction the test had
    already begun on ``db_connection`` uncommitted.
    """
    session = Session(
        bind=db_connection, join_transaction_mode="control_fully", expire_on_commit=False
    )
    yield session
    session.close()


@pytest.fixture(autouse=True)
def _seed_way_reset(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the database, undo what it committed.

    Autouse and set up first, so it is torn down last: the test's session and
    connection are closed by then. Tests that never touch the database cost nothing.
    """
    if not DATABASE_FIXTURES.intersection(request.fixturenames):
        yield
        return
    engine: Engine = request.getfixturevalue("db_engine")
    yield
    settings = request.config.stash[SETTINGS_KEY]
    if settings.reset == "schema":
        recreate_schema(engine, settings.alembic_ini)
    else:
        truncate(engine, request.config.stash[_MIGRATED_KEY], settings.alembic_ini)


def recreate_schema(engine: Engine, alembic_ini: Path) -> None:
    """Drop ``public`` with everything in it and migrate from nothing, as the team did.

    Migrations, not ``metadata.create_all``: triggers and seed rows exist only there.
    The pool is emptied first, so no idle connection keeps plans of dropped tables.
    """
    engine.dispose()
    with engine.connect() as connection:
        connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
        connection.commit()
        migrate(connection, alembic_ini)


def truncate(engine: Engine, migrated: Migrated, alembic_ini: Path) -> None:
    """Empty the tables the migrations left empty; seed rows (currencies) are kept.

    A test that migrates (the sample's downgrade tests) may leave the schema off
    head, and a truncate would then fail, or pass on the wrong schema, for every
    later test: the schema is rebuilt instead, as the team had to. One query to know.
    """
    with engine.connect() as connection:
        at_head = alembic_heads(connection) == migrated.heads
        connection.rollback()
        if at_head and migrated.empty_tables:
            quote = connection.dialect.identifier_preparer.quote
            tables = ", ".join(map(quote, migrated.empty_tables))
            connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            connection.commit()
    if not at_head:
        recreate_schema(engine, alembic_ini)


def migrate(connection: Connection, alembic_ini: Path) -> None:
    """``alembic upgrade head`` on ``connection``, committed.

    The connection is handed over (Alembic's "sharing a connection" recipe);
    ``sqlalchemy.url`` is set too, %-escaped for ConfigParser, for an ``env.py``
    that reads only that. ``configure_logger`` off keeps the sample's ``env.py``
    from reconfiguring the run's logging on every reset.
    """
    config = Config(str(alembic_ini))
    config.set_main_option("sqlalchemy.url", render(connection.engine.url).replace("%", "%%"))
    config.attributes["connection"] = connection
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    connection.commit()


def empty_tables(connection: Connection) -> list[str]:
    """The tables the migrations left empty: what ``truncate`` empties after each test."""
    return [
        name
        for name in inspect(connection).get_table_names()
        if name != "alembic_version"
        and not connection.scalar(select(exists().select_from(table(name))))
    ]


def alembic_heads(connection: Connection) -> frozenset[str]:
    """The revisions ``alembic_version`` holds; none once a test downgraded to base."""
    return frozenset(MigrationContext.configure(connection).get_current_heads())


def _worker_id(config: pytest.Config) -> str | None:
    workerinput: dict[str, str] = getattr(config, "workerinput", {})
    return workerinput.get("workerid") or os.environ.get("PYTEST_XDIST_WORKER")


def _admin(url: URL, statement: str, name: str) -> None:
    with psycopg.connect(**connect_kwargs(url), autocommit=True) as connection:
        connection.execute(sql.SQL(statement).format(sql.Identifier(name)))
