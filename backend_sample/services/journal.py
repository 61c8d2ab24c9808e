"""Double-entry journal.

Lifecycle: ``draft`` (editable, may be unbalanced while being prepared) ->
``posted`` (balanced, immutable) -> optionally ``void``. Corrections of posted
entries are made with a *reversal*: a mirror entry referencing the original.
The database enforces the same rules with triggers (migration 0004), so a bug in
this module or a hand-written SQL session cannot post an unbalanced entry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, selectinload

from backend_sample.errors import Conflict, DomainError, NotFound
from backend_sample.models import JournalEntry, JournalLine, StatementLine, Workspace
from backend_sample.services.accounts import require_postable
from backend_sample.services.common import quantize_money
from backend_sample.services.currencies import require_currency


@dataclass(frozen=True)
class LineInput:
    """One requested line; exactly one of ``debit``/``credit`` must be positive."""

    account_id: int
    debit: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)
    memo: str | None = None


def _validate_lines(lines: list[LineInput]) -> None:
    for number, line in enumerate(lines, start=1):
        if line.debit < 0 or line.credit < 0:
            raise DomainError(f"line {number}: amounts must not be negative")
        if (line.debit == 0) == (line.credit == 0):
            raise DomainError(f"line {number}: exactly one of debit or credit must be non-zero")
        for value in (line.debit, line.credit):
            if quantize_money(value) != value:
                raise DomainError(f"line {number}: amounts have at most 2 decimal places")


def check_balanced(lines: list[JournalLine] | list[LineInput]) -> None:
    """Raise unless the lines form a postable entry (>= 2 lines, debits == credits)."""
    if len(lines) < 2:
        raise DomainError("an entry needs at least two lines")
    debit = sum((line.debit for line in lines), Decimal(0))
    credit = sum((line.credit for line in lines), Decimal(0))
    if debit != credit:
        raise DomainError(
            f"entry is not balanced: debits {debit} != credits {credit}",
            details={"debit": str(debit), "credit": str(credit)},
        )


def get_entry(session: Session, workspace_id: int, entry_id: int) -> JournalEntry:
    """Load an entry (with lines) of this workspace or raise NotFound."""
    stmt = (
        select(JournalEntry)
        .options(selectinload(JournalEntry.lines))
        .where(JournalEntry.id == entry_id, JournalEntry.workspace_id == workspace_id)
    )
    entry = session.scalars(stmt).one_or_none()
    if entry is None:
        raise NotFound(f"JournalEntry {entry_id} not found")
    return entry


def list_entries(
    session: Session,
    workspace_id: int,
    status: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    account_id: int | None = None,
) -> list[JournalEntry]:
    """Entries by date then id, filtered by status, date range or touched account."""
    stmt = (
        select(JournalEntry)
        .options(selectinload(JournalEntry.lines))
        .where(JournalEntry.workspace_id == workspace_id)
        .order_by(JournalEntry.entry_date, JournalEntry.id)
    )
    if status is not None:
        stmt = stmt.where(JournalEntry.status == status)
    if date_from is not None:
        stmt = stmt.where(JournalEntry.entry_date >= date_from)
    if date_to is not None:
        stmt = stmt.where(JournalEntry.entry_date <= date_to)
    if account_id is not None:
        stmt = stmt.where(
            exists().where(
                JournalLine.entry_id == JournalEntry.id, JournalLine.account_id == account_id
            )
        )
    return list(session.scalars(stmt))


def create_entry(
    session: Session,
    workspace: Workspace,
    entry_date: dt.date,
    description: str,
    lines: list[LineInput],
    *,
    currency: str | None = None,
    reference: str | None = None,
    post: bool = False,
) -> JournalEntry:
    """Create a draft entry, and post it straight away when ``post`` is true."""
    _validate_lines(lines)
    require_postable(session, workspace.id, {line.account_id for line in lines})
    if post:
        check_balanced(lines)
    entry_currency = currency or workspace.reporting_currency
    require_currency(session, entry_currency)
    entry = JournalEntry(
        workspace_id=workspace.id,
        entry_date=entry_date,
        description=description,
        reference=reference,
        currency=entry_currency,
        status="draft",
    )
    entry.lines = _make_lines(lines)
    session.add(entry)
    session.flush()
    if post:
        _post(session, entry)
    session.commit()
    return entry


def _make_lines(lines: list[LineInput]) -> list[JournalLine]:
    return [
        JournalLine(
            line_no=number,
            account_id=line.account_id,
            debit=line.debit,
            credit=line.credit,
            memo=line.memo,
        )
        for number, line in enumerate(lines, start=1)
    ]


def _require_draft(entry: JournalEntry, action: str) -> None:
    if entry.status != "draft":
        raise Conflict(f"cannot {action} a {entry.status} entry; posted entries are immutable")


def update_entry(
    session: Session,
    workspace_id: int,
    entry_id: int,
    *,
    entry_date: dt.date | None = None,
    description: str | None = None,
    reference: str | None = None,
    lines: list[LineInput] | None = None,
) -> JournalEntry:
    """Edit a draft; lines, when given, replace the existing ones wholesale."""
    entry = get_entry(session, workspace_id, entry_id)
    _require_draft(entry, "edit")
    if lines is not None:
        _validate_lines(lines)
        require_postable(session, workspace_id, {line.account_id for line in lines})
        entry.lines.clear()
        session.flush()
        entry.lines.extend(_make_lines(lines))
    if entry_date is not None:
        entry.entry_date = entry_date
    if description is not None:
        entry.description = description
    if reference is not None:
        entry.reference = reference
    session.commit()
    return entry


def delete_entry(session: Session, workspace_id: int, entry_id: int) -> None:
    """Delete a draft (posted entries are voided or reversed, never deleted)."""
    entry = get_entry(session, workspace_id, entry_id)
    _require_draft(entry, "delete")
    session.delete(entry)
    session.commit()


def _post(session: Session, entry: JournalEntry) -> None:
    check_balanced(entry.lines)
    entry.status = "posted"
    entry.posted_at = dt.datetime.now(dt.UTC)
    session.flush()


def post_entry(session: Session, workspace_id: int, entry_id: int) -> JournalEntry:
    """Post a balanced draft; archived accounts are re-checked at posting time."""
    entry = get_entry(session, workspace_id, entry_id)
    _require_draft(entry, "post")
    require_postable(session, workspace_id, {line.account_id for line in entry.lines})
    _post(session, entry)
    session.commit()
    return entry


def void_entry(session: Session, workspace_id: int, entry_id: int) -> JournalEntry:
    """Void an entry: it stays on record but no longer counts in any report.

    Entries matched to bank statement lines must be unmatched first, otherwise the
    reconciliation would silently point at an entry that no longer counts.
    """
    entry = get_entry(session, workspace_id, entry_id)
    if entry.status == "void":
        raise Conflict("entry is already void")
    reconciled = session.scalar(
        select(exists().where(StatementLine.matched_line_id.in_([ln.id for ln in entry.lines])))
    )
    if reconciled:
        raise Conflict("entry is matched to bank statement lines; unmatch them first")
    live_reversal = session.scalar(
        select(JournalEntry.id).where(
            JournalEntry.reverses_id == entry.id, JournalEntry.status != "void"
        )
    )
    if live_reversal is not None:
        raise Conflict(f"entry was reversed by entry {live_reversal}; void that one first")
    entry.status = "void"
    entry.voided_at = dt.datetime.now(dt.UTC)
    session.commit()
    return entry


def reverse_entry(
    session: Session, workspace: Workspace, entry_id: int, entry_date: dt.date | None = None
) -> JournalEntry:
    """Post the mirror image of a posted entry (debits and credits swapped)."""
    original = get_entry(session, workspace.id, entry_id)
    if original.status != "posted":
        raise Conflict(f"only posted entries can be reversed, this one is {original.status}")
    if original.reverses_id is not None:
        raise Conflict("a reversal cannot itself be reversed; post a new entry instead")
    already = session.scalar(select(JournalEntry.id).where(JournalEntry.reverses_id == original.id))
    if already is not None:
        raise Conflict(f"entry {original.id} was already reversed by entry {already}")
    reversal_date = entry_date or original.entry_date
    if reversal_date < original.entry_date:
        raise DomainError("a reversal cannot be dated before the entry it reverses")
    mirror = [
        LineInput(account_id=ln.account_id, debit=ln.credit, credit=ln.debit, memo=ln.memo)
        for ln in original.lines
    ]
    require_postable(session, workspace.id, {line.account_id for line in mirror})
    reversal = JournalEntry(
        workspace_id=workspace.id,
        entry_date=reversal_date,
        description=f"Reversal of #{original.id}: {original.description}",
        reference=original.reference,
        currency=original.currency,
        status="draft",
        reverses_id=original.id,
    )
    reversal.lines = _make_lines(mirror)
    session.add(reversal)
    session.flush()
    _post(session, reversal)
    session.commit()
    return reversal
