"""Adopting the kit in a project written the usual way must never touch the developer's database.

The inner project is what broke the kit in the field: its Alembic ``env.py`` takes
the URL from the application's settings, its ``conftest.py`` imports an app whose
engine is built from ``DATABASE_URL`` at import, and the developer's
``DATABASE_URL`` points at a dev database full of rows.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy.engine import URL

from ci_kit.dburl import mask, render, with_database
from tests.helpers.runs import environ_without_kit
from tests.helpers.server import TEST_PASSWORD, connect_to, create_unmarked, database_names

SETTINGS = """
import os

def database_url():
    return os.environ.get("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/dev")
"""

APP = """
from sqlalchemy import create_engine
import settings

engine = create_engine(settings.database_url())  # at import, as many apps do
"""

ALEMBIC_INI = """
[alembic]
script_location = %(here)s/migrations

[loggers]
keys = root,alembic

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = INFO
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = ALEMBIC-LOG %(levelname)s %(message)s
"""

# Alembic's template, with the URL taken from the app's settings: it ignores the
# connection the kit hands over.
ENV_PY = """
from logging.config import fileConfig
from alembic import context
from sqlalchemy import create_engine
import app  # for its models, as many env.py files do: its engine is built right here
import settings

fileConfig(context.config.config_file_name)
engine = create_engine({url})
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
"""

REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

def upgrade():
    op.create_table(
        "items", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text)
    )
"""

# Alembic's async template, with the cookbook's branch for a shared connection.
ASYNC_ENV_PY = """
import asyncio
from logging.config import fileConfig
from alembic import context
import settings

fileConfig(context.config.config_file_name)

def do_run_migrations(connection):
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()

async def run_async_migrations():
    # Imported here only because this machine lacks greenlet; the template imports it on top.
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(settings.database_url())
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()

connection = context.config.attributes.get("connection")
if connection is None:
    asyncio.run(run_async_migrations())
else:
    do_run_migrations(connection)
"""

CONFTEST = """
import json, os
import app  # builds the engine from DATABASE_URL now, before any test

with open(os.environ["SEEN_LOG"], "a") as log:
    log.write(json.dumps({"where": "conftest", "db": app.engine.url.database}) + "\\n")
"""

TESTS = """
import json, os
import pytest
from sqlalchemy import text
import app

@pytest.mark.parametrize("n", range(4))
def test_the_apps_own_engine_reaches_the_test_database(n, db_url):
    with app.engine.connect() as connection:
        db = connection.scalar(text("SELECT current_database()"))
        count = connection.scalar(text("SELECT count(*) FROM items"))
    with open(os.environ["SEEN_LOG"], "a") as log:
        log.write(json.dumps({"where": "test", "db": db}) + "\\n")
    assert db == db_url.database
    assert count == 0

def test_the_kit_fixtures_on_the_same_database(db_session, db_url):
    db_session.execute(text("INSERT INTO items (name) VALUES ('x')"))
    assert db_session.scalar(text("SELECT current_database()")) == db_url.database
"""


def write_project(
    pytester: pytest.Pytester,
    base: str,
    env_url: str = "settings.database_url()",
    env_py: str = ENV_PY,
) -> None:
    pytester.makefile(
        ".toml",
        pyproject=(
            f'[tool.ci-kit]\nbase-name = "{base}"\nschema = "alembic.ini"\n'
            'url-env = "DATABASE_URL"\n'
        ),
    )
    pytester.makefile(".ini", alembic=ALEMBIC_INI)
    pytester.makepyfile(settings=SETTINGS, app=APP, conftest=CONFTEST, test_app=TESTS)
    versions = pytester.mkdir("migrations") / "versions"
    versions.mkdir()
    (pytester.path / "migrations" / "env.py").write_text(env_py.replace("{url}", env_url))
    (versions / "0001_items.py").write_text(REVISION)


@pytest.fixture
def dev_database(server_url: URL, base_name: str) -> URL:
    """The developer's database: a table with rows, no alembic_version. Dropped after."""
    name = f"{base_name}_devdb"
    create_unmarked(server_url, name)
    with connect_to(server_url, name) as conn:
        conn.execute("CREATE TABLE ledger (id int PRIMARY KEY, memo text)")
        conn.execute("INSERT INTO ledger VALUES (1, 'keep me'), (2, 'and me')")
    return with_database(server_url, name)


def snapshot(url: URL) -> dict[str, object]:
    """What a developer would notice changing: the tables, and every row of ledger."""
    with connect_to(url, url.database or "") as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
        rows = conn.execute("SELECT * FROM ledger ORDER BY id").fetchall()
    return {"tables": tables, "rows": rows}


def run(
    pytester: pytest.Pytester, server: URL, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """The inner suite on ``server``, with this process's environment less the kit's."""
    environ = environ_without_kit()
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", *args],
        cwd=pytester.path,
        env={**environ, "CI_KIT_DATABASE_URL": render(server), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("workers", [None, 2])
def test_an_app_reading_database_url_at_import_never_meets_the_dev_database(
    pytester: pytest.Pytester,
    server_url: URL,
    base_name: str,
    dev_database: URL,
    workers: int | None,
) -> None:
    write_project(pytester, base_name)
    before = snapshot(dev_database)
    log = pytester.path / "seen.jsonl"
    extra = {
        "DATABASE_URL": render(dev_database),
        "SEEN_LOG": str(log),
    }
    args = ["-n", str(workers)] if workers else []
    result = run(pytester, server_url.set(database=base_name), *args, **extra)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ci-kit: 5 tests (5 passed)" in output
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert {row["db"] for row in seen} <= {
        base_name,
        f"{base_name}_gw0",
        f"{base_name}_gw1",
        f"{base_name}_controller",
    }
    assert {row["db"] for row in seen if row["where"] == "test"}
    assert snapshot(dev_database) == before, "the developer's database is untouched"
    assert f"ci-kit: DATABASE_URL was {mask(dev_database)} before this run" in output
    assert TEST_PASSWORD not in output
    assert "ALEMBIC-LOG" not in output, "Alembic's fileConfig stays out of the run"


def test_alembic_logging_env_lets_env_py_configure_logging(
    pytester: pytest.Pytester, server_url: URL, base_name: str
) -> None:
    write_project(pytester, base_name)
    extra = {"CI_KIT_ALEMBIC_LOGGING": "env", "SEEN_LOG": str(pytester.path / "s.jsonl")}
    result = run(pytester, server_url.set(database=base_name), **extra)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ALEMBIC-LOG INFO Running upgrade  -> 0001" in result.stdout + result.stderr


def test_an_async_env_py_runs_on_the_kits_connection(
    pytester: pytest.Pytester, server_url: URL, base_name: str, dev_database: URL
) -> None:
    write_project(pytester, base_name, env_py=ASYNC_ENV_PY)
    before = snapshot(dev_database)
    extra = {"DATABASE_URL": render(dev_database), "SEEN_LOG": str(pytester.path / "s.jsonl")}
    result = run(pytester, server_url.set(database=base_name), "-n", "2", **extra)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ci-kit: 5 tests (5 passed) on 2 workers" in result.stdout
    assert snapshot(dev_database) == before


def test_an_env_py_that_migrates_another_database_stops_the_run_in_one_line(
    pytester: pytest.Pytester, server_url: URL, base_name: str, dev_database: URL
) -> None:
    elsewhere = render(dev_database)
    write_project(pytester, base_name, env_url=repr(elsewhere))
    extra = {
        "SEEN_LOG": str(pytester.path / "seen.jsonl"),
    }
    result = run(pytester, server_url.set(database=base_name), **extra)
    assert result.returncode == 4, result.stdout + result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("ERROR: ci-kit: after alembic upgrade head, template")
    assert "your env.py connected elsewhere" in line
    assert "config.attributes['connection']" in line
    assert TEST_PASSWORD not in result.stdout + result.stderr
    assert database_names(server_url, f"{base_name}_tpl_") == set(), "nothing half-built is kept"


def test_an_env_py_aiming_at_an_unreachable_server_gets_the_hint(
    pytester: pytest.Pytester, server_url: URL, base_name: str
) -> None:
    write_project(
        pytester, base_name, env_url=repr("postgresql+psycopg://app:pw@127.0.0.1:1/app_dev")
    )
    extra = {
        "SEEN_LOG": str(pytester.path / "seen.jsonl"),
    }
    result = run(pytester, server_url.set(database=base_name), **extra)
    assert result.returncode == 4
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert "building the schema from Alembic" in line
    assert "it ignored the kit's connection" in line


def test_a_test_never_runs_on_a_database_without_the_runs_mark(
    pytester: pytest.Pytester, server_url: URL, base_name: str
) -> None:
    pytester.makefile(".toml", pyproject=f'[tool.ci-kit]\nbase-name = "{base_name}"\n')
    # A test that strips the mark before the kit's fixtures first look at it.
    pytester.makeconftest(
        "import psycopg, pytest\n"
        "@pytest.fixture(autouse=True, scope='session')\n"
        "def _unmark(request):\n"
        "    databases = request.config.stash[__import__('ci_kit.fixtures').fixtures"
        ".DATABASES_KEY]\n"
        "    from ci_kit.connecting import connect_kwargs\n"
        "    with psycopg.connect(**connect_kwargs(databases.url), autocommit=True) as c:\n"
        "        c.execute(f'COMMENT ON DATABASE {databases.name} IS NULL')\n"
    )
    pytester.makepyfile(test_one="def test_one(db_url):\n    pass\n")
    result = run(pytester, server_url.set(database=base_name))
    assert result.returncode == 1
    assert "refusing to run tests on database" in result.stdout
    assert "does not carry this run's ci-kit mark" in result.stdout
    # Unmarked now, so the kit must leave it for the test's own clean-up.
    assert database_names(server_url, base_name) >= {base_name}


@pytest.mark.parametrize(
    "previous",
    ["postgresql://dev:hunter2@db:five/app_dev", "hunter2"],
    ids=["port-not-a-number", "no-url-at-all"],
)
def test_a_previous_value_that_is_not_a_url_is_named_but_never_shown(
    pytester: pytest.Pytester, server_url: URL, base_name: str, previous: str
) -> None:
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.ci-kit]\nbase-name = "{base_name}"\nurl-env = "DATABASE_URL"\n',
    )
    pytester.makepyfile(test_one="def test_one(db_url):\n    pass\n")
    result = run(pytester, server_url.set(database=base_name), DATABASE_URL=previous)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ci-kit: DATABASE_URL was a value that is not a URL before this run" in output
    assert "hunter2" not in output
