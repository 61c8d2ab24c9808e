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

from ci_kit.dburl import mask, render, secret_forms, with_database
from tests.helpers.roles import throwaway_role
from tests.helpers.runs import environ_without_kit
from tests.helpers.server import (
    TEST_PASSWORD,
    connect_to,
    create_unmarked,
    database_names,
)

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
    pytester: pytest.Pytester, server: URL, *args: str, stderr: int = subprocess.PIPE, **env: str
) -> subprocess.CompletedProcess[str]:
    """The inner suite on ``server``, with this process's environment less the kit's.

    ``stderr=subprocess.STDOUT`` merges the streams, in the order they were written.
    """
    environ = environ_without_kit()
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", *args],
        cwd=pytester.path,
        env={**environ, "CI_KIT_DATABASE_URL": render(server), **env},
        stdout=subprocess.PIPE,
        stderr=stderr,
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


@pytest.mark.parametrize("args", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_alembic_logging_env_lets_env_py_configure_logging(
    pytester: pytest.Pytester, server_url: URL, base_name: str, args: tuple[str, ...]
) -> None:
    """The project's output is the run's, whichever process prepares: an xdist
    controller prepares while it imports the conftests, under pytest's capture."""
    write_project(pytester, base_name)
    conftest = pytester.path / "conftest.py"  # slow: the migrations run while it imports
    conftest.write_text("import time\ntime.sleep(1.5)\n" + conftest.read_text())
    extra = {"CI_KIT_ALEMBIC_LOGGING": "env", "SEEN_LOG": str(pytester.path / "s.jsonl")}
    url = server_url.set(database=base_name)
    result = run(pytester, url, *args, stderr=subprocess.STDOUT, **extra)
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout
    migrated = [n for n, line in enumerate(lines) if "ALEMBIC-LOG INFO Running upgrade" in line]
    built = [n for n, line in enumerate(lines) if line.startswith("ci-kit: template ")]
    assert migrated, result.stdout
    assert built, result.stdout
    assert migrated < built, f"the migration's output came after the run: {result.stdout}"


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


# Settings from parts ------------------------------------------------------------
#
# The shape issue 20 met in a public FastAPI template: the application assembles its
# URL from POSTGRES_* variables in a pydantic-settings class that validates it as a
# PostgresDsn, at import; env.py and the conftest read it; nothing names the kit.

SETTINGS_FROM_PARTS = """
from pydantic import PostgresDsn, computed_field
from pydantic_core import MultiHostUrl
from pydantic_settings import BaseSettings


class Settings(BaseSettings):
    POSTGRES_SERVER: str = "localhost"
    POSTGRES_PORT: int = 5432
    POSTGRES_USER: str = "dev"
    POSTGRES_PASSWORD: str = ""
    POSTGRES_DB: str = "app"

    @computed_field
    @property
    def SQLALCHEMY_DATABASE_URI(self) -> PostgresDsn:
        return MultiHostUrl.build(
            scheme="postgresql+psycopg",
            username=self.POSTGRES_USER,
            password=self.POSTGRES_PASSWORD,
            host=self.POSTGRES_SERVER,
            port=self.POSTGRES_PORT,
            path=self.POSTGRES_DB,
        )


settings = Settings()


def database_url():
    return str(settings.SQLALCHEMY_DATABASE_URI)
"""

PARTS = {
    "POSTGRES_SERVER": "{host}",
    "POSTGRES_PORT": "{port}",
    "POSTGRES_USER": "{user}",
    "POSTGRES_PASSWORD": "{password}",
    "POSTGRES_DB": "{database}",
}

FRESH_TEST = """
import os
import pytest
from sqlalchemy import create_engine, text
import settings

@pytest.mark.ci_kit_isolation("fresh")
def test_a_fresh_clone_is_named_by_the_parts_too(db_url):
    assert os.environ["POSTGRES_DB"] == db_url.database
    engine = create_engine(settings.Settings().SQLALCHEMY_DATABASE_URI.unicode_string())
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT current_database()")) == db_url.database
    engine.dispose()
"""


def write_parts_project(pytester: pytest.Pytester, base: str, parts: dict[str, str]) -> None:
    """The issue's shape, adopted by its ``[tool.ci-kit]`` table alone."""
    write_project(pytester, base)
    env = "".join(f'{name} = "{template}"\n' for name, template in parts.items())
    pytester.makefile(
        ".toml",
        pyproject=(
            f'[tool.ci-kit]\nbase-name = "{base}"\nschema = "alembic.ini"\n\n'
            f"[tool.ci-kit.env]\n{env}"
        ),
    )
    pytester.makepyfile(settings=SETTINGS_FROM_PARTS, test_fresh=FRESH_TEST)


def developer_parts(dev: URL) -> dict[str, str]:
    """The developer's shell, or .env: every part names the dev database."""
    return {
        "POSTGRES_SERVER": dev.host or "",
        "POSTGRES_PORT": str(dev.port),
        "POSTGRES_USER": dev.username or "",
        "POSTGRES_PASSWORD": dev.password or "",
        "POSTGRES_DB": dev.database or "",
    }


# A password pydantic's MultiHostUrl.build can carry: it does not percent-encode
# (the application's limit, not the kit's; the kit's own role has '@' and '/').
URL_SAFE_PASSWORD = "parts-Pw_0123"


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "n2"])
@pytest.mark.parametrize("server", ["external", "embedded"])
def test_settings_from_parts_reach_each_processs_database_and_never_the_dev_one(
    pytester: pytest.Pytester,
    server_url: URL,
    base_name: str,
    dev_database: URL,
    workers: list[str],
    server: str,
) -> None:
    write_parts_project(pytester, base_name, PARTS)
    before = snapshot(dev_database)
    log = pytester.path / "seen.jsonl"
    with throwaway_role(server_url, URL_SAFE_PASSWORD) as role_url:
        developer = developer_parts(dev_database)
        extra = {**developer, "SEEN_LOG": str(log)}
        if server == "embedded":
            result = run(pytester, role_url, *workers, CI_KIT_SERVER="embedded", **extra)
        else:
            result = run(pytester, role_url.set(database=base_name), *workers, **extra)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ci-kit: 6 tests (6 passed)" in output
    seen = {row["db"] for row in map(json.loads, log.read_text().splitlines())}
    assert seen <= {base_name, f"{base_name}_gw0", f"{base_name}_gw1", f"{base_name}_controller"}
    assert snapshot(dev_database) == before, "the developer's database is untouched"
    (line,) = [line for line in output.splitlines() if "before this run" in line]
    assert f"POSTGRES_DB was '{dev_database.database}'" in line
    assert "POSTGRES_PASSWORD was ***" in line
    assert not [form for form in secret_forms(developer["POSTGRES_PASSWORD"]) if form in output]
    assert "not pointed at the test databases" not in output


def test_a_value_the_application_rejects_is_named_with_what_the_kit_set(
    pytester: pytest.Pytester, server_url: URL, base_name: str
) -> None:
    write_parts_project(pytester, base_name, {**PARTS, "POSTGRES_PORT": "port-{port}"})
    result = run(pytester, server_url.set(database=base_name), SEEN_LOG=str(pytester.path / "s"))
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, output
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ci-kit:")]
    assert "ValidationError" in line
    assert "(the kit set POSTGRES_PORT='port-5432')" in line
    assert "Traceback" not in output
    assert not [form for form in secret_forms(TEST_PASSWORD) if form in output]


# The schema's code runs in a child process -----------------------------------

REGISTRY = """
TABLES = set()

def register(name):
    # As SQLModel's and many ORMs' registries do: a table is defined once per process.
    if name in TABLES:
        raise RuntimeError(f"Table {name!r} is already defined for this MetaData instance")
    TABLES.add(name)
"""

REGISTERING_MODELS = """
import json, os
import registry
from sqlalchemy import Column, Integer, MetaData, Table

registry.register("items")
with open(os.environ["IMPORT_LOG"], "a") as log:
    log.write(json.dumps({"pid": os.getpid(), "db": os.environ.get("DATABASE_URL", "")}) + "\\n")

metadata = MetaData()
items = Table("items", metadata, Column("id", Integer, primary_key=True))
"""

PROCESS_TESTS = """
import json, os
import models  # the conftest's import, once per process, as without the kit

with open(os.environ["TEST_PIDS"], "a") as log:  # every process that collects
    log.write(json.dumps(os.getpid()) + "\\n")

def test_the_models_are_imported_once_here(db_url):
    pass
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "n2"])
def test_the_schemas_code_never_runs_in_a_test_process(
    pytester: pytest.Pytester, server_url: URL, base_name: str, workers: list[str]
) -> None:
    """A registry living outside the project (a library's, like SQLModel's) is met once."""
    library = pytester.mkdir("site")
    (library / "registry.py").write_text(REGISTRY)
    project = pytester.mkdir("project")
    (project / "pyproject.toml").write_text(
        f'[tool.ci-kit]\nbase-name = "{base_name}"\nschema = "models:metadata"\n'
        'url-env = "DATABASE_URL"\n'
    )
    (project / "models.py").write_text(REGISTERING_MODELS)
    (project / "test_models.py").write_text(PROCESS_TESTS)
    imports, tests = pytester.path / "imports.jsonl", pytester.path / "tests.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", *workers],
        cwd=project,
        env={
            **environ_without_kit(),
            "CI_KIT_DATABASE_URL": render(server_url.set(database=base_name)),
            "PYTHONPATH": f"{library}:{project}",
            "IMPORT_LOG": str(imports),
            "TEST_PIDS": str(tests),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    imported = [json.loads(line) for line in imports.read_text().splitlines()]
    test_pids = {json.loads(line) for line in tests.read_text().splitlines()}
    builds = [row for row in imported if row["pid"] not in test_pids]
    assert builds, "the template was built, by another process"
    assert all(f"/{base_name}_schema_reader" in row["db"] or "_tpl_" in row["db"] for row in builds)
    in_tests = [row for row in imported if row["pid"] in test_pids]
    assert len(in_tests) == len(test_pids), "each test process imports the models once"


# Variables nobody pointed -------------------------------------------------------


@pytest.mark.parametrize("where", ["environment", "dotenv"])
def test_a_database_variable_the_kit_does_not_manage_is_named_at_the_start(
    pytester: pytest.Pytester, server_url: URL, base_name: str, where: str
) -> None:
    pytester.makefile(".toml", pyproject=f'[tool.ci-kit]\nbase-name = "{base_name}"\n')
    pytester.makepyfile(test_one="def test_one(db_url):\n    pass\n")
    dev = "postgresql://dev:hunter2@localhost/app_dev"
    if where == "dotenv":
        (pytester.path / ".env").write_text(f"DATABASE_URL={dev}\nPOSTGRES_DB=app_dev\n")
        result = run(pytester, server_url.set(database=base_name))
        expected = (
            f"ci-kit: DATABASE_URL (in {pytester.path / '.env'}), POSTGRES_DB (in "
            f"{pytester.path / '.env'}) set, and not pointed at the test databases"
        )
    else:
        result = run(pytester, server_url.set(database=base_name), DATABASE_URL=dev)
        expected = (
            "ci-kit: DATABASE_URL=postgresql://dev:***@localhost/app_dev set, and not pointed "
            "at the test databases: code that reads it reaches the database named there; add "
            '[tool.ci-kit.env] DATABASE_URL = "{url}"'
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert expected in output
    assert "hunter2" not in output


def test_managed_variables_are_not_named_as_unmanaged(
    pytester: pytest.Pytester, server_url: URL, base_name: str
) -> None:
    pytester.makefile(
        ".toml",
        pyproject=(
            f'[tool.ci-kit]\nbase-name = "{base_name}"\nurl-env = "DATABASE_URL"\n'
            '[tool.ci-kit.env]\nPOSTGRES_DB = "{database}"\n'
        ),
    )
    pytester.makepyfile(test_one="def test_one(db_url):\n    pass\n")
    result = run(
        pytester, server_url.set(database=base_name), DATABASE_URL="x", POSTGRES_DB="app_dev"
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "not pointed at the test databases" not in output
    assert "POSTGRES_DB was 'app_dev', DATABASE_URL was a value that is not a URL" in output
