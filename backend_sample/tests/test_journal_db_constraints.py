"""The database itself refuses unbalanced postings and edits of posted entries.

These tests bypass the service layer on purpose (raw SQL / ORM writes), because the
triggers exist for exactly the writes the service layer does not see.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend_sample.tests.factories import Tenant, make_entry


def _raw_entry(conn: Connection, tenant: Tenant, status: str = "draft") -> int:
    return int(
        conn.execute(
            text(
                "INSERT INTO journal_entries (workspace_id, entry_date, description, status,"
                " currency) VALUES (:ws, '2024-01-01', 'raw', :status, 'USD') RETURNING id"
            ),
            {"ws": tenant.id, "status": status},
        ).scalar_one()
    )


def _raw_line(conn: Connection, entry_id: int, no: int, account_id: int, dr: str, cr: str) -> None:
    conn.execute(
        text(
            "INSERT INTO journal_lines (entry_id, line_no, account_id, debit, credit)"
            " VALUES (:e, :n, :a, :d, :c)"
        ),
        {"e": entry_id, "n": no, "a": account_id, "d": dr, "c": cr},
    )


def test_posting_unbalanced_entry_fails_in_database(
    db_session: Session, db_connection: Connection, tenant: Tenant
) -> None:
    entry_id = _raw_entry(db_connection, tenant)
    _raw_line(db_connection, entry_id, 1, tenant["bank"].id, "10", "0")
    _raw_line(db_connection, entry_id, 2, tenant["sales"].id, "0", "9")
    savepoint = db_connection.begin_nested()
    with pytest.raises(IntegrityError, match="not balanced"):
        db_connection.execute(
            text("UPDATE journal_entries SET status = 'posted' WHERE id = :id"), {"id": entry_id}
        )
    savepoint.rollback()
    status = db_connection.execute(
        text("SELECT status FROM journal_entries WHERE id = :id"), {"id": entry_id}
    ).scalar_one()
    assert status == "draft"


def test_posting_balanced_entry_in_sql_succeeds(
    db_session: Session, db_connection: Connection, tenant: Tenant
) -> None:
    entry_id = _raw_entry(db_connection, tenant)
    _raw_line(db_connection, entry_id, 1, tenant["bank"].id, "10", "0")
    _raw_line(db_connection, entry_id, 2, tenant["sales"].id, "0", "10")
    db_connection.execute(
        text("UPDATE journal_entries SET status = 'posted' WHERE id = :id"), {"id": entry_id}
    )
    assert (
        db_connection.execute(
            text("SELECT status FROM journal_entries WHERE id = :id"), {"id": entry_id}
        ).scalar_one()
        == "posted"
    )


@pytest.mark.parametrize("line_count", [0, 1])
def test_posting_entry_with_too_few_lines_fails(
    db_session: Session, db_connection: Connection, tenant: Tenant, line_count: int
) -> None:
    entry_id = _raw_entry(db_connection, tenant)
    if line_count:
        _raw_line(db_connection, entry_id, 1, tenant["bank"].id, "10", "0")
    with pytest.raises(IntegrityError, match=f"{line_count} line"):
        db_connection.execute(
            text("UPDATE journal_entries SET status = 'posted' WHERE id = :id"),
            {"id": entry_id},
        )


def test_inserting_directly_as_posted_fails(
    db_session: Session, db_connection: Connection, tenant: Tenant
) -> None:
    with pytest.raises(IntegrityError, match=r"journal_entry_balanced|not balanced"):
        _raw_entry(db_connection, tenant, status="posted")


def test_deferred_check_runs_at_set_constraints_immediate(
    db_session: Session, db_connection: Connection, tenant: Tenant
) -> None:
    db_connection.execute(text("SET CONSTRAINTS journal_entry_balanced DEFERRED"))
    entry_id = _raw_entry(db_connection, tenant)
    _raw_line(db_connection, entry_id, 1, tenant["bank"].id, "10", "0")
    db_connection.execute(
        text("UPDATE journal_entries SET status = 'posted' WHERE id = :id"), {"id": entry_id}
    )
    with pytest.raises(IntegrityError, match="not balanced"):
        db_connection.execute(text("SET CONSTRAINTS journal_entry_balanced IMMEDIATE"))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal_entries SET description = 'changed' WHERE id = :id",
        "UPDATE journal_entries SET entry_date = '2030-01-01' WHERE id = :id",
        "UPDATE journal_entries SET status = 'draft' WHERE id = :id",
        "UPDATE journal_entries SET status = 'void', description = 'x' WHERE id = :id",
        "DELETE FROM journal_entries WHERE id = :id",
        "UPDATE journal_lines SET debit = debit + 1 WHERE entry_id = :id AND line_no = 1",
        "UPDATE journal_lines SET memo = 'x' WHERE entry_id = :id",
        "DELETE FROM journal_lines WHERE entry_id = :id",
        "INSERT INTO journal_lines (entry_id, line_no, account_id, debit, credit)"
        " SELECT :id, 9, account_id, 1, 0 FROM journal_lines WHERE entry_id = :id LIMIT 1",
    ],
)
def test_posted_entry_is_immutable_in_database(
    db_session: Session, db_connection: Connection, tenant: Tenant, statement: str
) -> None:
    entry = make_entry(db_session, tenant, "2024-01-01", [("bank", 5, 0), ("sales", 0, 5)])
    with pytest.raises(IntegrityError, match=r"immutable|cannot be|only drafts"):
        db_connection.execute(text(statement), {"id": entry.id})


def test_posted_entry_can_be_voided_in_database(
    db_session: Session, db_connection: Connection, tenant: Tenant
) -> None:
    entry = make_entry(db_session, tenant, "2024-01-01", [("bank", 5, 0), ("sales", 0, 5)])
    db_connection.execute(
        text("UPDATE journal_entries SET status = 'void', voided_at = now() WHERE id = :id"),
        {"id": entry.id},
    )
    assert (
        db_connection.execute(
            text("SELECT status FROM journal_entries WHERE id = :id"), {"id": entry.id}
        ).scalar_one()
        == "void"
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal_entries SET status = 'posted' WHERE id = :id",
        "UPDATE journal_entries SET description = 'revived' WHERE id = :id",
        "DELETE FROM journal_entries WHERE id = :id",
    ],
)
def test_void_entry_is_frozen_in_database(
    db_session: Session, db_connection: Connection, tenant: Tenant, statement: str
) -> None:
    entry = make_entry(db_session, tenant, "2024-01-01", [("bank", 5, 0), ("sales", 0, 5)])
    db_connection.execute(
        text("UPDATE journal_entries SET status = 'void' WHERE id = :id"), {"id": entry.id}
    )
    with pytest.raises(IntegrityError):
        db_connection.execute(text(statement), {"id": entry.id})


def test_draft_lines_are_editable_in_database(
    db_session: Session, db_connection: Connection, tenant: Tenant
) -> None:
    entry = make_entry(db_session, tenant, "2024-01-01", [("bank", 5, 0)], post=False)
    db_connection.execute(
        text("UPDATE journal_lines SET debit = 6 WHERE entry_id = :id"), {"id": entry.id}
    )
    db_connection.execute(text("DELETE FROM journal_entries WHERE id = :id"), {"id": entry.id})
    remaining = db_connection.execute(
        text("SELECT count(*) FROM journal_lines WHERE entry_id = :id"), {"id": entry.id}
    ).scalar_one()
    assert remaining == 0


def test_moving_a_line_out_of_a_posted_entry_is_refused(
    db_session: Session, db_connection: Connection, tenant: Tenant
) -> None:
    posted = make_entry(db_session, tenant, "2024-01-01", [("bank", 5, 0), ("sales", 0, 5)])
    draft = make_entry(db_session, tenant, "2024-01-01", [("bank", 5, 0)], post=False)
    with pytest.raises(IntegrityError, match="posted journal entry"):
        db_connection.execute(
            text("UPDATE journal_lines SET entry_id = :draft WHERE entry_id = :posted"),
            {"draft": draft.id, "posted": posted.id},
        )


@pytest.mark.parametrize(
    ("debit", "credit", "constraint"),
    [
        ("-1", "0", "ck_journal_lines_non_negative"),
        ("0", "0", "ck_journal_lines_one_side"),
        ("1", "1", "ck_journal_lines_one_side"),
    ],
)
def test_line_check_constraints(
    db_session: Session,
    db_connection: Connection,
    tenant: Tenant,
    debit: str,
    credit: str,
    constraint: str,
) -> None:
    entry_id = _raw_entry(db_connection, tenant)
    with pytest.raises(IntegrityError, match=constraint):
        _raw_line(db_connection, entry_id, 1, tenant["bank"].id, debit, credit)


def test_status_check_constraint(
    db_session: Session, db_connection: Connection, tenant: Tenant
) -> None:
    with pytest.raises(IntegrityError, match="ck_journal_entries_status"):
        _raw_entry(db_connection, tenant, status="open")
