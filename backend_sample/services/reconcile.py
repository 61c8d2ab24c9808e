"""Bank reconciliation: pair statement lines with journal lines of the bank account.

Two automatic passes, both restricted to posted, not yet matched journal lines:

1. *exact*: same date and same signed amount (debit - credit on the bank account).
   Done in one set-based ``UPDATE``: both sides are numbered within each
   (date, amount) group and paired by that number, so three identical payments
   match three identical ledger lines one-to-one.
2. *rule*: the statement description contains a rule's pattern (case-insensitive),
   and the journal entry also touches the rule's counter-account, within the rule's
   amount tolerance and date window; the closest candidate wins.

Manual matching covers the rest; the report lists what is unmatched on both sides.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import and_, exists, func, literal, select, update
from sqlalchemy.orm import Session, aliased

from backend_sample.errors import Conflict, DomainError
from backend_sample.models import (
    JournalEntry,
    JournalLine,
    ReconciliationRule,
    StatementLine,
)
from backend_sample.services.accounts import get_account
from backend_sample.services.common import get_owned

_signed_amount = JournalLine.debit - JournalLine.credit


def _open_journal_lines(account_id: int):  # type: ignore[no-untyped-def]
    """Posted journal lines of the account that no statement line points at."""
    return (
        select(JournalLine.id, JournalEntry.entry_date, _signed_amount.label("amount"))
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .where(
            JournalLine.account_id == account_id,
            JournalEntry.status == "posted",
            ~exists().where(StatementLine.matched_line_id == JournalLine.id),
        )
    )


def create_rule(
    session: Session,
    workspace_id: int,
    name: str,
    pattern: str,
    account_id: int,
    amount_tolerance: Decimal = Decimal(0),
    date_window_days: int = 0,
    priority: int = 100,
) -> ReconciliationRule:
    """Store a matching rule; the counter-account must belong to the workspace."""
    get_account(session, workspace_id, account_id)
    if not pattern.strip():
        raise DomainError("pattern must not be blank")
    if amount_tolerance < 0 or date_window_days < 0:
        raise DomainError("tolerance and date window must not be negative")
    rule = ReconciliationRule(
        workspace_id=workspace_id,
        name=name,
        pattern=pattern.strip(),
        account_id=account_id,
        amount_tolerance=amount_tolerance,
        date_window_days=date_window_days,
        priority=priority,
        is_active=True,
    )
    session.add(rule)
    session.commit()
    return rule


def list_rules(session: Session, workspace_id: int) -> list[ReconciliationRule]:
    """Rules in the order they are applied (priority, then id)."""
    stmt = (
        select(ReconciliationRule)
        .where(ReconciliationRule.workspace_id == workspace_id)
        .order_by(ReconciliationRule.priority, ReconciliationRule.id)
    )
    return list(session.scalars(stmt))


def set_rule_active(
    session: Session, workspace_id: int, rule_id: int, active: bool
) -> ReconciliationRule:
    """Enable or disable a rule without losing it."""
    rule = get_owned(session, ReconciliationRule, workspace_id, rule_id)
    rule.is_active = active
    session.commit()
    return rule


def delete_rule(session: Session, workspace_id: int, rule_id: int) -> None:
    """Delete a rule; existing matches made by it stay."""
    session.delete(get_owned(session, ReconciliationRule, workspace_id, rule_id))
    session.commit()


def _match_exact(session: Session, workspace_id: int, account_id: int) -> int:
    statement = (
        select(
            StatementLine.id,
            StatementLine.line_date,
            StatementLine.amount,
            func.row_number()
            .over(
                partition_by=(StatementLine.line_date, StatementLine.amount),
                order_by=StatementLine.id,
            )
            .label("rn"),
        )
        .where(
            StatementLine.workspace_id == workspace_id,
            StatementLine.account_id == account_id,
            StatementLine.matched_line_id.is_(None),
        )
        .subquery("s")
    )
    open_lines = _open_journal_lines(account_id).subquery("o")
    ledger = select(
        open_lines.c.id,
        open_lines.c.entry_date,
        open_lines.c.amount,
        func.row_number()
        .over(partition_by=(open_lines.c.entry_date, open_lines.c.amount), order_by=open_lines.c.id)
        .label("rn"),
    ).subquery("j")
    pairs = (
        select(statement.c.id.label("statement_id"), ledger.c.id.label("journal_id"))
        .join(
            ledger,
            and_(
                statement.c.line_date == ledger.c.entry_date,
                statement.c.amount == ledger.c.amount,
                statement.c.rn == ledger.c.rn,
            ),
        )
        .subquery("pairs")
    )
    result = session.execute(
        update(StatementLine)
        .where(StatementLine.id == pairs.c.statement_id)
        .values(matched_line_id=pairs.c.journal_id, match_method="exact")
        .returning(StatementLine.id)
    )
    return len(result.all())


def _match_by_rules(session: Session, workspace_id: int, account_id: int) -> int:
    rules = [rule for rule in list_rules(session, workspace_id) if rule.is_active]
    matched = 0
    counter = aliased(JournalLine)
    for rule in rules:
        candidates = session.scalars(
            select(StatementLine)
            .where(
                StatementLine.workspace_id == workspace_id,
                StatementLine.account_id == account_id,
                StatementLine.matched_line_id.is_(None),
                StatementLine.description.icontains(rule.pattern, autoescape=True),
            )
            .order_by(StatementLine.line_date, StatementLine.id)
        ).all()
        for line in candidates:
            open_lines = _open_journal_lines(account_id).subquery("o")
            date_gap = func.abs(open_lines.c.entry_date - literal(line.line_date))
            amount_gap = func.abs(open_lines.c.amount - literal(line.amount))
            best = session.scalar(
                select(open_lines.c.id)
                .join(JournalLine, JournalLine.id == open_lines.c.id)
                .where(
                    amount_gap <= rule.amount_tolerance,
                    date_gap <= rule.date_window_days,
                    exists().where(
                        counter.entry_id == JournalLine.entry_id,
                        counter.account_id == rule.account_id,
                        counter.id != JournalLine.id,
                    ),
                )
                .order_by(date_gap, amount_gap, open_lines.c.id)
                .limit(1)
            )
            if best is not None:
                line.matched_line_id = best
                line.match_method = "rule"
                session.flush()
                matched += 1
    return matched


def auto_reconcile(session: Session, workspace_id: int, account_id: int) -> dict[str, int]:
    """Run the exact pass, then the rules; returns how many lines each matched."""
    get_account(session, workspace_id, account_id)
    exact = _match_exact(session, workspace_id, account_id)
    by_rule = _match_by_rules(session, workspace_id, account_id)
    session.commit()
    return {"exact": exact, "rule": by_rule}


def match_manually(
    session: Session, workspace_id: int, statement_line_id: int, journal_line_id: int
) -> StatementLine:
    """Pair a statement line with a journal line of the same bank account and amount."""
    line = get_owned(session, StatementLine, workspace_id, statement_line_id)
    if line.matched_line_id is not None:
        raise Conflict("statement line is already matched; unmatch it first")
    row = session.execute(
        select(JournalLine, JournalEntry)
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .where(JournalLine.id == journal_line_id, JournalEntry.workspace_id == workspace_id)
    ).one_or_none()
    if row is None:
        raise DomainError(f"journal line {journal_line_id} not found")
    journal_line, entry = row
    if entry.status != "posted":
        raise DomainError("only lines of posted entries can be matched")
    if journal_line.account_id != line.account_id:
        raise DomainError("journal line is on a different account than the statement")
    if journal_line.debit - journal_line.credit != line.amount:
        raise DomainError(
            f"amounts differ: statement {line.amount}, "
            f"journal {journal_line.debit - journal_line.credit}"
        )
    taken = session.scalar(
        select(StatementLine.id).where(StatementLine.matched_line_id == journal_line_id)
    )
    if taken is not None:
        raise Conflict(f"journal line is already matched to statement line {taken}")
    line.matched_line_id = journal_line_id
    line.match_method = "manual"
    session.commit()
    return line


def unmatch(session: Session, workspace_id: int, statement_line_id: int) -> StatementLine:
    """Undo a match of any kind."""
    line = get_owned(session, StatementLine, workspace_id, statement_line_id)
    if line.matched_line_id is None:
        raise Conflict("statement line is not matched")
    line.matched_line_id = None
    line.match_method = None
    session.commit()
    return line


def reconciliation_report(
    session: Session,
    workspace_id: int,
    account_id: int,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> dict[str, object]:
    """Unmatched lines on both sides and the totals of each side for the period."""
    account = get_account(session, workspace_id, account_id)
    statement_stmt = select(StatementLine).where(
        StatementLine.workspace_id == workspace_id,
        StatementLine.account_id == account.id,
    )
    open_lines = _open_journal_lines(account.id).subquery("o")
    journal_stmt = (
        select(
            open_lines.c.id,
            open_lines.c.entry_date,
            open_lines.c.amount,
            JournalEntry.id.label("entry_id"),
            JournalEntry.description,
        )
        .join(JournalLine, JournalLine.id == open_lines.c.id)
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
    )
    if date_from is not None:
        statement_stmt = statement_stmt.where(StatementLine.line_date >= date_from)
        journal_stmt = journal_stmt.where(open_lines.c.entry_date >= date_from)
    if date_to is not None:
        statement_stmt = statement_stmt.where(StatementLine.line_date <= date_to)
        journal_stmt = journal_stmt.where(open_lines.c.entry_date <= date_to)
    statement_lines = session.scalars(
        statement_stmt.order_by(StatementLine.line_date, StatementLine.id)
    ).all()
    unmatched_statement = [ln for ln in statement_lines if ln.matched_line_id is None]
    unmatched_journal = session.execute(
        journal_stmt.order_by(open_lines.c.entry_date, open_lines.c.id)
    ).all()
    return {
        "account_id": account.id,
        "matched": len(statement_lines) - len(unmatched_statement),
        "unmatched_statement_lines": [
            {
                "id": ln.id,
                "date": ln.line_date,
                "description": ln.description,
                "amount": ln.amount,
                "reference": ln.reference,
            }
            for ln in unmatched_statement
        ],
        "unmatched_journal_lines": [
            {
                "id": row.id,
                "entry_id": row.entry_id,
                "date": row.entry_date,
                "description": row.description,
                "amount": row.amount,
            }
            for row in unmatched_journal
        ],
        "unmatched_statement_total": sum(
            (ln.amount for ln in unmatched_statement), Decimal("0.00")
        ),
        "unmatched_journal_total": sum((row.amount for row in unmatched_journal), Decimal("0.00")),
    }
