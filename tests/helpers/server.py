"""The shared test PostgreSQL: its role, names nobody else uses, and databases on it.

The external server is the local PostgreSQL that ``scripts/setup`` starts, reached
as role ``ci_kit`` whose password contains ``@ : / % # ? +`` and a space.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL

from ci_kit.admin import Admin
from ci_kit.cloning import ensure_template
from ci_kit.connecting import connect_kwargs
from ci_kit.dburl import with_database
from ci_kit.locks import run_lock
from tests.helpers.runs import wait_until

TEST_PASSWORD = "p@ss:w/rd%20 #?+"


def new_base_name() -> str:
    """A base name no other test uses, that looks like a test database's to the kit."""
    return f"kit_{uuid.uuid4().hex[:8]}_test"


def drop_leftover(url: URL, name: str) -> None:
    """Drop a database a test left, whatever state a concurrent sweep puts it in meanwhile.

    Under xdist another test's run may be sweeping it at this very moment (its run
    is over): it may turn invalid (a DROP under way) or vanish between the listing
    and these statements. A template must stop being one before it can be dropped;
    an invalid database takes DROP only, and a refused ALTER ends the session, hence
    a connection of its own.
    """
    ident = sql.Identifier(name)
    with (
        psycopg.connect(**connect_kwargs(url), autocommit=True) as conn,
        contextlib.suppress(psycopg.Error),
    ):
        conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(ident))
    with psycopg.connect(**connect_kwargs(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


@contextlib.contextmanager
def live_run(server_url: URL, run: str) -> Iterator[Admin]:
    """A connection holding ``run``'s run lock, as a live run's does, until the block ends."""
    holder = Admin(server_url)
    try:
        holder.lock(run_lock(run))
        yield holder
    finally:
        holder.close()


def as_superuser(statement: str) -> None:
    """Run ``statement`` as the local server's superuser (root on a Debian machine)."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and the local server's postgres user")
    subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-q", "-v", "ON_ERROR_STOP=1", "-c", statement],
        check=True,
        capture_output=True,
        timeout=60,
    )


@contextlib.contextmanager
def superuser_session_on(url: URL, name: str) -> Iterator[None]:
    """A session the kit's role may not end (a superuser's ``psql``) on ``name`` for the block."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and the local server's postgres user")
    session = subprocess.Popen(
        ["runuser", "-u", "postgres", "--", "psql", "-q", "-d", name, "-c", "SELECT pg_sleep(60)"]
    )
    try:
        wait_until(lambda: "postgres" in sessions_on(url, name))
        yield
    finally:
        as_superuser(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )
        session.wait(timeout=60)


def sessions_on(url: URL, name: str) -> list[str]:
    """The roles of the sessions connected to database ``name``."""
    with connect_to(url, "postgres") as conn:
        rows = conn.execute(
            "SELECT usename FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchall()
    return [user for (user,) in rows]


def database_names(url: URL, prefix: str) -> set[str]:
    """The databases on the server whose names start with ``prefix``."""
    with psycopg.connect(**connect_kwargs(url)) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        ).fetchall()
    return {name for (name,) in rows}


def connect_to(url: URL, database: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(**connect_kwargs(with_database(url, database)), autocommit=True)


def make_table(url: URL, database: str) -> None:
    with connect_to(url, database) as conn:
        conn.execute("CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO items (name) VALUES ('seed')")


def build_template(admin: Admin, name: str, base: str, run: str = "run1") -> bool:
    return ensure_template(
        admin,
        name,
        base=base,
        run_id=run,
        build=lambda url: make_table(url, str(url.database)),
    )


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
