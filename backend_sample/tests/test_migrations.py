"""The Alembic history must produce exactly the ORM's schema, and stay linear."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, Integer, MetaData, Table, inspect, text

from backend_sample.db import Base

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


@pytest.fixture(scope="module")
def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(Config(str(ALEMBIC_INI)))


def test_head_matches_orm(db_connection: Connection) -> None:
    context = MigrationContext.configure(db_connection, opts={"compare_type": True})
    assert compare_metadata(context, Base.metadata) == []


def test_head_matches_orm_including_server_defaults(db_connection: Connection) -> None:
    context = MigrationContext.configure(
        db_connection, opts={"compare_type": True, "compare_server_default": True}
    )
    assert compare_metadata(context, Base.metadata) == []


def test_comparison_detects_drift(db_connection: Connection) -> None:
    drifted = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    Table("not_migrated", drifted, Column("id", Integer, primary_key=True))
    context = MigrationContext.configure(db_connection)
    diff = compare_metadata(context, drifted)
    assert [d[0] for d in diff] == ["add_table"]


def test_database_is_at_head(db_connection: Connection, script: ScriptDirectory) -> None:
    current = MigrationContext.configure(db_connection).get_current_revision()
    assert current == script.get_current_head()


def test_history_is_linear_with_at_least_ten_revisions(script: ScriptDirectory) -> None:
    revisions = list(script.walk_revisions())
    assert len(revisions) >= 10
    assert len(script.get_heads()) == 1
    assert [r.revision for r in reversed(revisions)] == [f"{i:04d}" for i in range(1, 13)]


@pytest.mark.parametrize("revision", [f"{i:04d}" for i in range(1, 13)])
def test_each_revision_documents_why_and_can_downgrade(
    script: ScriptDirectory, revision: str
) -> None:
    rev = script.get_revision(revision)
    assert rev is not None
    assert rev.doc
    assert len(rev.doc) > 10
    assert callable(rev.module.downgrade)


@pytest.mark.parametrize(
    "trigger", ["journal_entry_balanced", "journal_entry_guard", "journal_line_guard"]
)
def test_triggers_installed(db_connection: Connection, trigger: str) -> None:
    found = db_connection.execute(
        text("SELECT count(*) FROM pg_trigger WHERE tgname = :name AND NOT tgisinternal"),
        {"name": trigger},
    ).scalar_one()
    assert found == 1


def test_balance_trigger_is_deferrable(db_connection: Connection) -> None:
    row = db_connection.execute(
        text(
            "SELECT tgdeferrable, tginitdeferred FROM pg_trigger"
            " WHERE tgname = 'journal_entry_balanced'"
        )
    ).one()
    assert tuple(row) == (True, False)


def test_currencies_seeded(db_connection: Connection) -> None:
    codes = db_connection.execute(text("SELECT code FROM currencies ORDER BY code")).scalars()
    assert {"EUR", "GBP", "JPY", "USD"} <= set(codes)


def test_constraint_names_follow_convention(db_connection: Connection) -> None:
    inspector = inspect(db_connection)
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        assert inspector.get_pk_constraint(table)["name"] == f"pk_{table}"
        for fk in inspector.get_foreign_keys(table):
            assert fk["name"].startswith(f"fk_{table}_")
        for uq in inspector.get_unique_constraints(table):
            assert uq["name"].startswith(f"uq_{table}_")


def test_money_columns_are_numeric_18_2(db_connection: Connection) -> None:
    rows = db_connection.execute(
        text(
            "SELECT table_name, column_name, numeric_precision, numeric_scale"
            " FROM information_schema.columns WHERE table_schema = 'public'"
            " AND data_type = 'numeric' ORDER BY 1, 2"
        )
    ).all()
    scales = {(r.table_name, r.column_name): (r.numeric_precision, r.numeric_scale) for r in rows}
    assert scales.pop(("fx_rates", "rate")) == (18, 8)
    assert set(scales.values()) == {(18, 2)}
    assert ("journal_lines", "debit") in scales


def test_no_float_columns(db_connection: Connection) -> None:
    floats = db_connection.execute(
        text(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public'"
            " AND data_type IN ('real', 'double precision')"
        )
    ).scalar_one()
    assert floats == 0


@pytest.mark.db_isolation("fresh")
def test_downgrade_to_base_and_upgrade_again(db_connection: Connection) -> None:
    config = Config(str(ALEMBIC_INI))
    config.attributes["connection"] = db_connection
    command.downgrade(config, "base")
    assert set(inspect(db_connection).get_table_names()) == {"alembic_version"}
    command.upgrade(config, "head")
    context = MigrationContext.configure(db_connection)
    assert context.get_current_revision() == "0012"
    assert compare_metadata(context, Base.metadata) == []


@pytest.mark.db_isolation("fresh")
def test_upgrade_with_existing_data_backfills(db_connection: Connection) -> None:
    config = Config(str(ALEMBIC_INI))
    config.attributes["connection"] = db_connection
    with db_connection.begin():
        command.downgrade(config, "0004")
        ws = db_connection.execute(
            text("INSERT INTO workspaces (name) VALUES ('Legacy') RETURNING id")
        ).scalar_one()
        db_connection.execute(
            text(
                "INSERT INTO accounts (workspace_id, code, name, type) VALUES"
                " (:ws, '1000', 'Cash', 'asset'), (:ws, '4000', 'Sales', 'income')"
            ),
            {"ws": ws},
        )
        command.upgrade(config, "head")
    assert (
        db_connection.execute(
            text("SELECT reporting_currency FROM workspaces WHERE id = :ws"), {"ws": ws}
        ).scalar_one()
        == "USD"
    )
    cash_flags = dict(
        db_connection.execute(text("SELECT code, is_cash FROM accounts ORDER BY code")).all()
    )
    assert cash_flags == {"1000": True, "4000": False}


def test_offline_sql_generation(capsys: pytest.CaptureFixture[str]) -> None:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("sqlalchemy.url", "postgresql+psycopg://u@localhost/offline")
    command.upgrade(config, "0003", sql=True)
    out = capsys.readouterr().out
    assert "CREATE TABLE workspaces" in out
    assert "CREATE INDEX ix_journal_lines_account_id" in out


def test_env_without_any_url_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = Config(str(ALEMBIC_INI))
    with pytest.raises(RuntimeError, match="no database to migrate"):
        command.upgrade(config, "head", sql=True)


def test_env_uses_database_url_setting(monkeypatch: pytest.MonkeyPatch, db_url) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", db_url.render_as_string(hide_password=False))
    config = Config(str(ALEMBIC_INI))
    config.attributes["configure_logger"] = False
    command.current(config)
    command.upgrade(config, "head")
