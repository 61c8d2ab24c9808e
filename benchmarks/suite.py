"""Generated workloads: an Alembic history of N revisions and a suite of N tests.

Every comparison between the kit and another way of doing it runs the *same*
generated tests; only the ``conftest.py`` (where the ``sql`` fixture comes from)
and the command line differ. The schema is described once as a list of steps,
rendered both as Alembic revisions and as a ``MetaData`` for ``create_all``, so
"migrate per worker" and "create_all per test" build the same tables.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, Numeric, String, Table, func

Flavour = Literal["kit", "pytest-postgresql"]
TABLES = 8
"""The first revisions create the tables; the rest add columns and indexes to them."""


@dataclass(frozen=True)
class Step:
    """One revision: a new table, or a new column (and maybe an index) on a table."""

    number: int
    table: str
    column: str | None

    @property
    def indexed(self) -> bool:
        return self.column is not None and self.number % 4 == 0


def steps(revisions: int) -> list[Step]:
    """The schema history: tables first, then columns spread over them."""
    tables = max(2, min(TABLES, revisions))
    return [Step(n, f"t{n % tables}", None if n < tables else f"c{n}") for n in range(revisions)]


def metadata_for(revisions: int) -> MetaData:
    """The schema at the head of a ``revisions``-long history, for ``create_all``."""
    metadata = MetaData()
    tables: dict[str, Table] = {}
    for step in steps(revisions):
        if step.column is None:
            tables[step.table] = Table(
                step.table,
                metadata,
                Column("id", Integer, primary_key=True),
                Column("name", String(100), nullable=False),
                Column("amount", Numeric(12, 2), nullable=False, server_default="0"),
                Column("created_at", DateTime(timezone=True), server_default=func.now()),
            )
        else:
            column = Column(step.column, Integer)
            tables[step.table].append_column(column)
            if step.indexed:
                Index(f"ix_{step.table}_{step.column}", column)
    return metadata


def write_history(directory: Path, revisions: int) -> Path:
    """An Alembic script directory with ``revisions`` revisions; returns its ``alembic.ini``."""
    versions = directory / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    (directory / "env.py").write_text(_ENV)
    (directory / "script.py.mako").write_text("")
    ini = directory / "alembic.ini"
    ini.write_text("[alembic]\nscript_location = %(here)s\npath_separator = os\n")
    previous = None
    for step in steps(revisions):
        revision = f"r{step.number:04d}"
        (versions / f"{revision}.py").write_text(_revision(step, revision, previous))
        previous = revision
    return ini


def _revision(step: Step, revision: str, previous: str | None) -> str:
    if step.column is None:
        body = (
            f"op.create_table({step.table!r}, "
            "sa.Column('id', sa.Integer, primary_key=True), "
            "sa.Column('name', sa.String(100), nullable=False), "
            "sa.Column('amount', sa.Numeric(12, 2), nullable=False, server_default='0'), "
            "sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now()))"
        )
    else:
        body = f"op.add_column({step.table!r}, sa.Column({step.column!r}, sa.Integer))"
        if step.indexed:
            body += f"\n    op.create_index('ix_{step.table}_{step.column}', {step.table!r}, "
            body += f"[{step.column!r}])"
    return (
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f"revision = {revision!r}\ndown_revision = {previous!r}\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade():\n    {body}\n"
    )


_ENV = '''\
"""Use the caller's connection (the kit hands one over) or sqlalchemy.url."""
from alembic import context
from sqlalchemy import create_engine, pool

connection = context.config.attributes.get("connection")
if connection is not None:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
else:
    url = context.config.get_main_option("sqlalchemy.url")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
'''


@dataclass(frozen=True)
class SuiteSpec:
    """A generated suite: how many tests, on how long a schema history."""

    tests: int
    revisions: int = 30
    per_file: int = 50


def write_suite(directory: Path, spec: SuiteSpec, flavour: Flavour) -> Path:
    """Write the suite, its schema history and the flavour's conftest; returns ``directory``.

    Tests are order-independent only if each starts from empty tables: every test
    asserts the row count it wrote, so a leaking isolation fails the run.
    """
    directory.mkdir(parents=True, exist_ok=True)
    write_history(directory / "history", spec.revisions)
    (directory / "bench_schema.py").write_text(
        f"from benchmarks.suite import metadata_for\n\nmetadata = metadata_for({spec.revisions})\n"
    )
    tests = directory / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "conftest.py").write_text(_CONFTESTS[flavour])
    for start in range(0, spec.tests, spec.per_file):
        numbers = range(start, min(start + spec.per_file, spec.tests))
        body = "\n\n".join(_test(n, max(2, min(TABLES, spec.revisions))) for n in numbers)
        (tests / f"test_g{start // spec.per_file:03d}.py").write_text(body)
    (directory / "pyproject.toml").write_text(_pyproject(flavour))
    return directory


def _test(number: int, tables: int) -> str:
    table, other = f"t{number % tables}", f"t{(number + 1) % tables}"
    return textwrap.dedent(
        f"""\
        def test_{number:05d}(sql):
            sql("INSERT INTO {table} (name, amount) VALUES (%s, %s), (%s, %s)",
                ("a{number}", 1.5, "b{number}", 2.5))
            sql("INSERT INTO {other} (name, amount) VALUES (%s, %s)", ("c{number}", 4))
            sql("UPDATE {table} SET amount = amount * 2 WHERE name = %s", ("a{number}",))
            rows = sql("SELECT count(*), sum(amount) FROM {table}")
            assert rows == [(2, 5.5)]
        """
    )


def _pyproject(flavour: Flavour) -> str:
    common = '[tool.pytest.ini_options]\ntestpaths = ["tests"]\naddopts = ["-p", "no:randomly"]\n'
    if flavour != "kit":
        return common
    return common + '\n[tool.ci-kit]\nbase-name = "bench_test"\nschema = "history/alembic.ini"\n'


_CONFTESTS: dict[Flavour, str] = {
    "kit": '''\
"""The kit's way: a template clone per worker, each test rolled back (db_connection)."""
import pytest


@pytest.fixture
def sql(db_connection):
    def run(statement, params=()):
        result = db_connection.exec_driver_sql(statement, params)
        return result.fetchall() if result.returns_rows else []
    return run
''',
    "pytest-postgresql": '''\
"""pytest-postgresql's way: its process fixture loads the schema into a template
database once; its ``postgresql`` fixture (DatabaseJanitor) clones a database from
it for every test and drops it afterwards."""
from pathlib import Path

import pytest
from pytest_postgresql import factories
from sqlalchemy.engine import URL


def load_schema(host, port, user, dbname, password=None, **_):
    from alembic import command
    from alembic.config import Config

    url = URL.create("postgresql+psycopg", username=user, password=password, host=host,
                     port=port, database=dbname)
    config = Config(str(Path(__file__).parent.parent / "history" / "alembic.ini"))
    config.set_main_option(
        "sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%")
    )
    command.upgrade(config, "head")


postgresql_proc = factories.postgresql_proc(load=[load_schema])
postgresql = factories.postgresql("postgresql_proc")


@pytest.fixture
def sql(postgresql):
    postgresql.autocommit = True

    def run(statement, params=()):
        cursor = postgresql.execute(statement, params)
        return cursor.fetchall() if cursor.description is not None else []
    return run
''',
}
