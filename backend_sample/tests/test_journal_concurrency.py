"""Behaviour with real commits and several connections (needs non-rollback isolation)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend_sample.errors import Conflict
from backend_sample.models import JournalEntry
from backend_sample.services import journal
from backend_sample.tests.factories import Tenant, make_entry, make_workspace


@pytest.mark.db_isolation("truncate")
def test_committed_entry_visible_to_second_connection(db_session: Session) -> None:
    tenant = make_workspace(db_session)
    entry = make_entry(db_session, tenant, "2024-01-01", [("bank", 5, 0), ("sales", 0, 5)])
    with db_session.get_bind().engine.connect() as other:
        status = other.execute(
            text("SELECT status FROM journal_entries WHERE id = :id"), {"id": entry.id}
        ).scalar_one()
    assert status == "posted"


@pytest.mark.db_isolation("truncate")
def test_deferred_balance_check_fires_at_commit(db_session: Session) -> None:
    tenant = make_workspace(db_session)
    with db_session.get_bind().engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(text("SET CONSTRAINTS journal_entry_balanced DEFERRED"))
        entry_id = conn.execute(
            text(
                "INSERT INTO journal_entries (workspace_id, entry_date, description, status,"
                " currency) VALUES (:ws, '2024-01-01', 'bulk', 'draft', 'USD') RETURNING id"
            ),
            {"ws": tenant.id},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO journal_lines (entry_id, line_no, account_id, debit, credit)"
                " VALUES (:e, 1, :a, 10, 0)"
            ),
            {"e": entry_id, "a": tenant["bank"].id},
        )
        conn.execute(
            text("UPDATE journal_entries SET status = 'posted' WHERE id = :id"), {"id": entry_id}
        )
        with pytest.raises(IntegrityError, match="not balanced"):
            transaction.commit()
        conn.rollback()
        count = conn.execute(
            text("SELECT count(*) FROM journal_entries WHERE id = :id"), {"id": entry_id}
        ).scalar_one()
    assert count == 0


@pytest.mark.db_isolation("truncate")
def test_concurrent_reversals_create_only_one(db_session: Session) -> None:
    tenant = make_workspace(db_session)
    original = make_entry(db_session, tenant, "2024-01-01", [("bank", 5, 0), ("sales", 0, 5)])
    engine = db_session.get_bind().engine
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def reverse() -> None:
        with Session(engine, expire_on_commit=False) as session:
            workspace = session.merge(tenant.workspace)
            barrier.wait()
            try:
                journal.reverse_entry(session, workspace, original.id)
                outcomes.append("ok")
            except (Conflict, IntegrityError):
                outcomes.append("refused")

    threads = [threading.Thread(target=reverse) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "refused"]
    reversals = db_session.scalars(
        select(JournalEntry).where(JournalEntry.reverses_id == original.id)
    ).all()
    assert len(reversals) == 1


@pytest.mark.db_isolation("fresh")
def test_fresh_database_starts_empty_and_migrated(db_connection: Connection) -> None:
    assert db_connection.execute(text("SELECT count(*) FROM workspaces")).scalar_one() == 0
    assert db_connection.execute(text("SELECT count(*) FROM currencies")).scalar_one() >= 10
    version = db_connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == "0012"


@pytest.mark.db_isolation("fresh")
def test_fresh_database_allows_real_commits(db_session: Session) -> None:
    tenant: Tenant = make_workspace(db_session)
    make_entry(db_session, tenant, "2024-01-01", [("bank", 5, 0), ("sales", 0, 5)])
    with db_session.get_bind().engine.connect() as other:
        assert other.execute(text("SELECT count(*) FROM journal_entries")).scalar_one() == 1
