"""Schema sources: what shapes a template's fingerprint, and building it for real."""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool

from ci_kit.admin import Admin
from ci_kit.errors import MigrationFailed, SchemaNotInTemplate, SchemaSourceError
from ci_kit.marks import Mark
from ci_kit.schema import (
    FINGERPRINT_VERSION,
    SchemaSource,
    build_schema,
    fingerprint,
    parse_schema_source,
)
from ci_kit.schema.alembic import AlembicSchema
from ci_kit.schema.empty import EmptySchema
from ci_kit.schema.metadata import MetadataSchema
from tests.helpers.python_env import run_without

ENV_PY = """
from alembic import context
from sqlalchemy import create_engine

config = context.config

def run_migrations_online():
    connection = config.attributes.get("connection")
    if connection is None:
        with create_engine(config.get_main_option("sqlalchemy.url")).connect() as connection:
            context.configure(connection=connection, target_metadata=None)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()

run_migrations_online()
"""

REVISION = """
from alembic import op
import sqlalchemy as sa

revision = "{revision}"
down_revision = {down!r}

def upgrade():
    {body}
"""


def write_alembic_project(root: Path) -> Path:
    """A two-revision Alembic project, as ``alembic init`` would lay it out."""
    (root / "migrations" / "versions").mkdir(parents=True)
    (root / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/migrations\n")
    (root / "migrations" / "env.py").write_text(ENV_PY)
    add_revision(
        root,
        "0001",
        None,
        'op.create_table("items", sa.Column("id", sa.Integer, primary_key=True))',
    )
    add_revision(root, "0002", "0001", 'op.add_column("items", sa.Column("name", sa.Text))')
    return root / "alembic.ini"


def add_revision(root: Path, revision: str, down: str | None, body: str) -> None:
    path = root / "migrations" / "versions" / f"{revision}.py"
    path.write_text(textwrap.dedent(REVISION).format(revision=revision, down=down, body=body))


@pytest.fixture
def scratch_db(admin: Admin, base_name: str, run_id: str) -> Iterator[URL]:
    """An empty database for a schema build, dropped afterwards (a live run's, so that
    no concurrent test's sweep takes it for a crashed run's)."""
    name = f"{base_name}_schema"
    admin.create(name, Mark("worker", run_id, base_name))
    yield admin.url_of(name)
    admin.drop(name, allowed=lambda mark: True)


def build_into(url: URL, source: SchemaSource) -> set[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            build_schema(source, connection)
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


class TestParsing:
    def test_nothing_means_an_empty_template(self, tmp_path: Path) -> None:
        assert parse_schema_source(None, tmp_path) == EmptySchema()

    def test_an_ini_path_is_alembic_relative_to_the_root(self, tmp_path: Path) -> None:
        ini = write_alembic_project(tmp_path)
        assert parse_schema_source("alembic.ini", tmp_path) == AlembicSchema(ini)

    def test_alembic_logging_is_kept_out_unless_asked_for(self, tmp_path: Path) -> None:
        ini = write_alembic_project(tmp_path)
        assert AlembicSchema(ini) == AlembicSchema(ini, quiet_logging=True)
        loud = parse_schema_source("alembic.ini", tmp_path, quiet_alembic=False)
        assert loud == AlembicSchema(ini, quiet_logging=False)

    def test_a_module_target_is_metadata_imported_from_the_root(self, tmp_path: Path) -> None:
        assert parse_schema_source("app.models:Base", tmp_path) == MetadataSchema(
            "app.models:Base", tmp_path
        )

    def test_a_missing_ini_is_one_line(self, tmp_path: Path) -> None:
        with pytest.raises(SchemaSourceError, match="no such Alembic config file"):
            parse_schema_source("db/alembic.ini", tmp_path)

    @pytest.mark.parametrize("value", ["models", "models:", ":Base", "a b c"])
    def test_other_shapes_are_refused(self, tmp_path: Path, value: str) -> None:
        with pytest.raises(SchemaSourceError, match=r"neither a path to alembic\.ini"):
            parse_schema_source(value, tmp_path)


class TestFingerprint:
    def test_a_templates_name_is_pinned_by_its_parts(self) -> None:
        """A refactoring that renames every template makes every project rebuild: pinned."""
        schema = hashlib.sha256(b"empty\0").hexdigest()
        expected = hashlib.sha256(f"ci-kit/{FINGERPRINT_VERSION}\0pg15\0{schema}".encode())
        assert FINGERPRINT_VERSION == "2"
        assert fingerprint(EmptySchema(), server_major=15) == expected.hexdigest()

    def test_changes_with_any_migration_or_env_py_and_with_the_server(self, tmp_path: Path) -> None:
        source = parse_schema_source(str(write_alembic_project(tmp_path)), tmp_path)
        first = fingerprint(source, server_major=15)
        assert fingerprint(source, server_major=15) == first
        assert fingerprint(source, server_major=16) != first

        add_revision(tmp_path, "0003", "0002", 'op.create_index("ix_name", "items", ["name"])')
        second = fingerprint(source, server_major=15)
        assert second != first

        env = tmp_path / "migrations" / "env.py"
        env.write_text(env.read_text() + "\n# tweak\n")
        assert fingerprint(source, server_major=15) not in (first, second)

    def test_bytecode_caches_do_not_count(self, tmp_path: Path) -> None:
        source = parse_schema_source(str(write_alembic_project(tmp_path)), tmp_path)
        before = fingerprint(source, server_major=15)
        cache = tmp_path / "migrations" / "versions" / "__pycache__"
        cache.mkdir()
        (cache / "0001.cpython-311.pyc").write_bytes(b"\x00")
        assert fingerprint(source, server_major=15) == before

    def test_metadata_fingerprint_follows_its_ddl(self, tmp_path: Path) -> None:
        module = tmp_path / "fp_models.py"
        module.write_text(
            "from sqlalchemy import Column, Integer, MetaData, Table\n"
            "metadata = MetaData()\n"
            "Table('t', metadata, Column('id', Integer, primary_key=True))\n"
        )
        source = parse_schema_source("fp_models:metadata", tmp_path)
        first = fingerprint(source, server_major=15)
        assert first == fingerprint(source, server_major=15)
        assert first != fingerprint(EmptySchema(), server_major=15)

    @pytest.mark.parametrize(
        ("target", "complaint"),
        [
            ("no_such_module_xyz:metadata", "does not import: ModuleNotFoundError"),
            ("json:metadata", "module 'json' has no attribute 'metadata'"),
            ("json:dumps", "is a function, not a MetaData"),
        ],
    )
    def test_bad_metadata_targets_are_one_line(
        self, tmp_path: Path, target: str, complaint: str
    ) -> None:
        with pytest.raises(SchemaSourceError, match=complaint):
            fingerprint(MetadataSchema(target, tmp_path), server_major=15)

    def test_an_alembic_config_alembic_cannot_use_is_one_line(self, tmp_path: Path) -> None:
        (tmp_path / "alembic.ini").write_text("[alembic]\n")  # no script_location
        source = parse_schema_source("alembic.ini", tmp_path)
        with pytest.raises(SchemaSourceError) as caught:
            fingerprint(source, server_major=15)
        message = str(caught.value)
        assert message.startswith(f"Alembic config {tmp_path / 'alembic.ini'} is not usable: ")
        assert "script_location" in message
        assert "\n" not in message

    def test_without_alembic_installed_an_alembic_source_says_to_install_it(
        self, tmp_path: Path
    ) -> None:
        ini = write_alembic_project(tmp_path / "project")
        code = (
            "from pathlib import Path\n"
            "from ci_kit.errors import SchemaSourceError\n"
            "from ci_kit.schema import fingerprint\n"
            "from ci_kit.schema.alembic import AlembicSchema\n"
            f"source = AlembicSchema(Path({str(ini)!r}))\n"
            "try:\n"
            "    fingerprint(source, server_major=15)\n"
            "except SchemaSourceError as error:\n"
            "    print(error)\n"
        )
        done = run_without(tmp_path / "site", ("alembic", "alembic-*"), code)
        assert done.returncode == 0, done.stderr
        assert done.stdout == (
            f"schema source {ini} is an Alembic config, but Alembic is not installed "
            "in this environment: pip install alembic\n"
        )


class TestAlembicPaths:
    """``script_location = migrations`` means the ini's ``migrations``, as ``%(here)s`` does."""

    @pytest.fixture
    def relative_ini(self, tmp_path: Path) -> Path:
        ini = write_alembic_project(tmp_path / "project")
        ini.write_text("[alembic]\nscript_location = migrations\n")
        decoy = tmp_path / "elsewhere"
        write_alembic_project(decoy)
        add_revision(decoy, "0003", "0002", 'op.create_table("decoy")')
        return ini

    @pytest.mark.parametrize("cwd", ["project", "project/migrations", "elsewhere", "."])
    def test_the_fingerprint_and_the_description_do_not_depend_on_the_current_directory(
        self, relative_ini: Path, monkeypatch: pytest.MonkeyPatch, cwd: str
    ) -> None:
        absolute = AlembicSchema(relative_ini)
        relative_ini.with_name("absolute.ini").write_text(
            "[alembic]\nscript_location = %(here)s/migrations\n"
        )
        here = AlembicSchema(relative_ini.with_name("absolute.ini"))
        monkeypatch.chdir(relative_ini.parents[1] / cwd)
        expected = fingerprint(here, server_major=15)
        assert fingerprint(absolute, server_major=15) == expected
        assert absolute.describe() == (
            f"Alembic ({relative_ini}, scripts in {relative_ini.parent / 'migrations'})"
        )

    def test_the_build_uses_the_ini_directory_and_gives_the_current_one_back(
        self, relative_ini: Path, monkeypatch: pytest.MonkeyPatch, scratch_db: URL
    ) -> None:
        elsewhere = relative_ini.parents[1] / "elsewhere"
        monkeypatch.chdir(elsewhere)
        assert build_into(scratch_db, AlembicSchema(relative_ini)) == {"items", "alembic_version"}
        assert Path.cwd() == elsewhere


class TestEnvPyHint:
    """The hint that env.py connected elsewhere only for a connection that could not open."""

    @pytest.mark.parametrize(
        ("message", "hinted"),
        [
            ('connection failed: connection to server at "10.0.0.9", port 5432 failed', True),
            ("could not connect to server: Connection refused", True),
            ("consuming input failed: server closed the connection unexpectedly", False),
            ("terminating connection due to administrator command", False),
        ],
    )
    def test_only_opening_a_connection_suggests_another_server(
        self, tmp_path: Path, message: str, hinted: bool
    ) -> None:
        import psycopg

        hint = AlembicSchema(tmp_path / "alembic.ini").failure_hint(
            psycopg.OperationalError(message)
        )
        assert ("env.py" in hint) is hinted

    def test_other_errors_get_no_hint(self, tmp_path: Path) -> None:
        error = ValueError("connection failed")
        assert AlembicSchema(tmp_path / "alembic.ini").failure_hint(error) == ""


class TestBuild:
    def test_alembic_history_is_applied_on_the_shared_connection(
        self, tmp_path: Path, scratch_db: URL
    ) -> None:
        source = parse_schema_source(str(write_alembic_project(tmp_path)), tmp_path)
        assert build_into(scratch_db, source) == {"items", "alembic_version"}

    def test_a_broken_migration_names_the_error(self, tmp_path: Path, scratch_db: URL) -> None:
        write_alembic_project(tmp_path)
        add_revision(tmp_path, "0003", "0002", 'op.execute("ALTER TABLE nowhere ADD x int")')
        source = parse_schema_source("alembic.ini", tmp_path)
        with pytest.raises(MigrationFailed) as caught:
            build_into(scratch_db, source)
        message = str(caught.value)
        assert 'relation "nowhere" does not exist' in message
        assert "\n" not in message
        assert "p@ss" not in message

    def test_a_source_that_fails_to_load_while_building_is_the_sources_error(
        self, tmp_path: Path, scratch_db: URL
    ) -> None:
        """Not a failed migration: the fix is in the configuration, not in a migration."""
        source = MetadataSchema("no_such_module_xyz:metadata", tmp_path)
        with pytest.raises(SchemaSourceError, match="does not import: ModuleNotFoundError"):
            build_into(scratch_db, source)

    def test_a_template_missing_a_table_of_the_metadata_is_refused(
        self, tmp_path: Path, scratch_db: URL
    ) -> None:
        (tmp_path / "elsewhere_models.py").write_text(
            "from sqlalchemy import DDL, Column, Integer, MetaData, Table, event\n"
            "metadata = MetaData()\n"
            "Table('kept', metadata, Column('id', Integer, primary_key=True))\n"
            "Table('moved', metadata, Column('id', Integer, primary_key=True))\n"
            "# As a hook that builds a table on the application's own engine leaves it out.\n"
            "event.listen(metadata, 'after_create', DDL('DROP TABLE moved'))\n"
        )
        source = parse_schema_source("elsewhere_models:metadata", tmp_path)
        with pytest.raises(SchemaNotInTemplate) as caught:
            build_into(scratch_db, source)
        assert str(caught.value) == (
            f"after create_all, template '{scratch_db.database}' lacks moved: "
            "does elsewhere_models:metadata build its tables on another engine?"
        )


@dataclass(frozen=True)
class SqlFileSchema:
    """A third kind of schema, a plain SQL file, written against the interface alone."""

    path: Path

    def describe(self) -> str:
        return f"SQL ({self.path.name})"

    def fingerprint_parts(self) -> Iterator[bytes]:
        yield b"sql"
        yield self.path.read_bytes()

    def build(self, connection: Connection) -> None:
        connection.exec_driver_sql(self.path.read_text())

    def verify(self, connection: Connection) -> None:
        tables = inspect(connection).get_table_names()
        connection.rollback()
        if "checked" not in tables:
            raise SchemaNotInTemplate(f"{self.describe()} left no table 'checked'")

    def failure_hint(self, error: BaseException) -> str:
        return f" (run psql -f {self.path.name} to see it fail)"


class TestInterface:
    """Naming, building and checking a template go through the interface alone."""

    def sql_schema(self, root: Path, sql: str) -> SchemaSource:
        (root / "schema.sql").write_text(sql)
        return SqlFileSchema(root / "schema.sql")

    def test_a_new_kind_of_schema_is_named_by_what_it_says_shapes_it(self, tmp_path: Path) -> None:
        source = self.sql_schema(tmp_path, "CREATE TABLE checked (id int);")
        first = fingerprint(source, server_major=15)
        assert first == fingerprint(source, server_major=15)
        assert first != fingerprint(EmptySchema(), server_major=15)
        (tmp_path / "schema.sql").write_text("CREATE TABLE checked (id bigint);")
        assert fingerprint(source, server_major=15) != first

    def test_a_new_kind_of_schema_is_built_committed_and_checked(
        self, tmp_path: Path, scratch_db: URL
    ) -> None:
        source = self.sql_schema(tmp_path, "CREATE TABLE checked (id int); CREATE TABLE t (x int);")
        assert build_into(scratch_db, source) == {"checked", "t"}

    def test_its_failure_is_one_line_with_its_own_hint(
        self, tmp_path: Path, scratch_db: URL
    ) -> None:
        source = self.sql_schema(tmp_path, "CREATE TABLE checked (id no_such_type);")
        with pytest.raises(MigrationFailed) as caught:
            build_into(scratch_db, source)
        message = str(caught.value)
        assert message.startswith("building the schema from SQL (schema.sql) failed: ")
        assert 'type "no_such_type" does not exist' in message
        assert message.endswith(" (run psql -f schema.sql to see it fail)")
        assert "\n" not in message

    def test_its_check_failing_is_its_own_error_after_the_commit(
        self, tmp_path: Path, scratch_db: URL
    ) -> None:
        source = self.sql_schema(tmp_path, "CREATE TABLE elsewhere (id int);")
        with pytest.raises(SchemaNotInTemplate, match="left no table 'checked'"):
            build_into(scratch_db, source)
        engine = create_engine(scratch_db, poolclass=NullPool)
        try:
            assert inspect(engine).get_table_names() == ["elsewhere"]
        finally:
            engine.dispose()
