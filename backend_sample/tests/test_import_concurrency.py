"""Concurrent imports of the same file must not double-insert (real commits)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend_sample.models import ImportBatch, StatementLine
from backend_sample.services import imports
from backend_sample.tests.factories import csv_text, make_workspace

FILE = csv_text(*[f"2024-03-{day:02d},Payment {day},-{day}.00,REF{day}," for day in range(1, 21)])


@pytest.mark.db_isolation("truncate")
def test_two_concurrent_imports_insert_each_row_once(db_session: Session) -> None:
    tenant = make_workspace(db_session)
    engine = db_session.get_bind().engine
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with Session(engine) as session:
                barrier.wait()
                imports.import_statement(session, tenant.id, tenant["bank"].id, FILE)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert db_session.scalar(select(func.count()).select_from(StatementLine)) == 20
    batches = db_session.scalars(select(ImportBatch).order_by(ImportBatch.id)).all()
    assert sorted((b.rows_imported, b.rows_duplicate) for b in batches) == [(0, 20), (20, 0)]


@pytest.mark.db_isolation("truncate")
def test_rejected_import_leaves_no_committed_rows(db_session: Session) -> None:
    tenant = make_workspace(db_session)
    bad = FILE + "2024-03-31,Broken,abc,X,\n"
    with pytest.raises(Exception, match="nothing was imported"):
        imports.import_statement(db_session, tenant.id, tenant["bank"].id, bad)
    with Session(db_session.get_bind().engine) as observer:
        assert observer.scalar(select(func.count()).select_from(StatementLine)) == 0
        assert observer.scalar(select(func.count()).select_from(ImportBatch)) == 0
