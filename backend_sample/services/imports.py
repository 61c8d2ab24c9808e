"""Bank statement import: all-or-nothing, idempotent.

Each row gets a fingerprint (sha256 of account, date, amount, reference - or the
description when there is no reference - and the row's occurrence number among
identical rows of the same file). Re-importing a file, or an overlapping export,
therefore skips the rows already present, while two genuinely identical payments on
one day (same file, no reference) are both kept. Rows are inserted with
``ON CONFLICT DO NOTHING`` on ``(account_id, row_hash)``, so two concurrent imports
of the same file cannot double-insert either.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backend_sample.errors import DomainError, ImportRejected
from backend_sample.models import ImportBatch, StatementLine
from backend_sample.services.accounts import get_account
from backend_sample.services.statement_csv import ParsedRow, parse_statement


def row_fingerprint(account_id: int, row: ParsedRow, occurrence: int) -> str:
    """Stable hash identifying a statement row for duplicate detection."""
    key = row.reference or row.description.lower()
    raw = f"{account_id}|{row.date.isoformat()}|{row.amount}|{key}|{occurrence}"
    return hashlib.sha256(raw.encode()).hexdigest()


def import_statement(
    session: Session,
    workspace_id: int,
    account_id: int,
    data: bytes | str,
    *,
    filename: str | None = None,
    date_format: str | None = None,
    decimal_separator: str = ".",
) -> ImportBatch:
    """Parse and import a statement file into a bank (asset) account."""
    account = get_account(session, workspace_id, account_id)
    if account.type != "asset":
        raise DomainError("statements can only be imported into asset (bank) accounts")
    if account.is_archived:
        raise DomainError(f"account {account.code} is archived")
    if decimal_separator not in (".", ","):
        raise DomainError("decimal_separator must be '.' or ','")
    parsed = parse_statement(data, date_format=date_format, decimal_separator=decimal_separator)
    if parsed.errors:
        raise ImportRejected(
            f"{len(parsed.errors)} row(s) could not be read; nothing was imported",
            details=parsed.errors,
        )
    batch = ImportBatch(
        workspace_id=workspace_id,
        account_id=account.id,
        filename=filename,
        rows_total=len(parsed.rows),
        rows_imported=0,
        rows_duplicate=0,
    )
    session.add(batch)
    session.flush()
    seen: Counter[tuple[dt.date, object, str]] = Counter()
    values = []
    for row in parsed.rows:
        identity = (row.date, row.amount, row.reference or row.description.lower())
        seen[identity] += 1
        values.append(
            {
                "workspace_id": workspace_id,
                "account_id": account.id,
                "batch_id": batch.id,
                "line_date": row.date,
                "description": row.description,
                "amount": row.amount,
                "reference": row.reference,
                "balance": row.balance,
                "row_hash": row_fingerprint(account.id, row, seen[identity]),
            }
        )
    stmt = (
        insert(StatementLine)
        .values(values)
        .on_conflict_do_nothing(index_elements=["account_id", "row_hash"])
        .returning(StatementLine.id)
    )
    inserted = len(session.execute(stmt).all())
    batch.rows_imported = inserted
    batch.rows_duplicate = len(values) - inserted
    session.commit()
    return batch


def list_batches(session: Session, workspace_id: int) -> list[ImportBatch]:
    """Import history of the workspace, newest first."""
    stmt = (
        select(ImportBatch)
        .where(ImportBatch.workspace_id == workspace_id)
        .order_by(ImportBatch.id.desc())
    )
    return list(session.scalars(stmt))


def list_statement_lines(
    session: Session,
    workspace_id: int,
    account_id: int | None = None,
    unmatched_only: bool = False,
) -> list[StatementLine]:
    """Statement lines by date, optionally only those not yet reconciled."""
    stmt = select(StatementLine).where(StatementLine.workspace_id == workspace_id)
    if account_id is not None:
        stmt = stmt.where(StatementLine.account_id == account_id)
    if unmatched_only:
        stmt = stmt.where(StatementLine.matched_line_id.is_(None))
    return list(session.scalars(stmt.order_by(StatementLine.line_date, StatementLine.id)))
