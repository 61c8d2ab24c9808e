"""Shared fixtures of the kit's own tests: a real PostgreSQL, and names nobody else uses.

The external server is the local PostgreSQL that ``scripts/setup`` starts, reached
as role ``ci_kit`` whose password contains ``@ : / % # ? +`` and a space. Set
``CI_KIT_TEST_SERVER_URL`` to use another. Without a server the tests that need
one are skipped locally and fail in CI.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import alembic.ddl.postgresql  # noqa: F401  (see below)
import psycopg
import pytest
import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401  (see below)
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from ci_kit.dburl import DRIVERNAME, mask, parse_database_url, redact, with_database
from ci_kit.provision import Admin, connect_kwargs

# The imports marked "see below" are loaded before any test runs on purpose:
# pytester removes, after each test, the modules first imported during it, and
# SQLAlchemy's PostgreSQL dialect registers SQL functions globally when imported;
# imported a second time it warns, and filterwarnings=error turns that into a
# failure that depends on test order.

TEST_PASSWORD = "p@ss:w/rd%20 #?+"
_DEFAULT_SERVER = URL.create(
    DRIVERNAME,
    username="ci_kit",
    password=TEST_PASSWORD,
    host="127.0.0.1",
    port=5432,
    database="postgres",
)


@pytest.fixture(scope="session")
def server_url() -> URL:
    """The maintenance URL of the external server, as a role with CREATEDB."""
    raw = os.environ.get("CI_KIT_TEST_SERVER_URL")
    url = parse_database_url(make_url(raw)) if raw else _DEFAULT_SERVER
    try:
        psycopg.connect(**{"connect_timeout": 5, **connect_kwargs(url)}).close()
    except psycopg.OperationalError as error:
        message = (
            f"no test PostgreSQL at {mask(url)} ({redact(str(error), url)}); run scripts/setup"
        )
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture
def base_name(server_url: URL) -> Iterator[str]:
    """A base test database name unique to this test; whatever it left is dropped."""
    base = f"kit_{uuid.uuid4().hex[:8]}_test"
    yield base
    with psycopg.connect(**connect_kwargs(server_url), autocommit=True) as conn:
        names = conn.execute(
            "SELECT datname, datconnlimit = -2 FROM pg_database WHERE datname LIKE %s",
            (base + "%",),
        ).fetchall()
        for name, invalid in names:
            ident = sql.Identifier(name)
            if not invalid:  # an invalid database takes DROP only; ALTER is FATAL
                conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(ident))
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(ident))


@pytest.fixture
def deploy_database(server_url: URL, base_name: str) -> URL:
    """An empty database for a deploy test, password in the URL; ``base_name`` drops it."""
    create_unmarked(server_url, base_name)
    return with_database(server_url, base_name)


@pytest.fixture
def admin(server_url: URL) -> Iterator[Admin]:
    admin = Admin(server_url)
    yield admin
    admin.close()


def environ_without_kit() -> dict[str, str]:
    """This process's environment less the kit's settings: an inner run configures its own."""
    return {key: value for key, value in os.environ.items() if not key.startswith("CI_KIT_")}


def database_names(url: URL, prefix: str) -> set[str]:
    """The databases on the server whose names start with ``prefix``."""
    with psycopg.connect(**connect_kwargs(url)) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        ).fetchall()
    return {name for (name,) in rows}


def connect_to(url: URL, database: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(**connect_kwargs(with_database(url, database)), autocommit=True)


def running(pid: int) -> bool:
    """Alive and not a zombie: a reparented postmaster's zombie may linger unreaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def create_unmarked(url: URL, name: str) -> None:
    """A database the kit did not create: it must survive everything the kit does."""
    with psycopg.connect(**connect_kwargs(url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def password_in_query(url: URL, password: str, **query: str) -> URL:
    """The same server, its password given as libpq's ``password`` query parameter."""
    return URL.create(
        url.drivername,
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query={"password": password, **query},
    )


def wait_until(condition: Callable[[], bool], seconds: float = 30) -> None:
    """Poll ``condition`` until it holds; fail the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
