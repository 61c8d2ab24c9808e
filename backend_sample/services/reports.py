"""Financial reports, computed by PostgreSQL.

Every report is one aggregate query over posted journal lines (voided and draft
entries never count). Amounts are converted into the workspace's reporting currency
*inside* the query with a correlated FX-rate subquery; before a report runs,
:func:`_ensure_rates` names the first currency/date that has no rate, so a report
is either complete or a clear error, never silently partial.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    Numeric,
    Select,
    Subquery,
    and_,
    case,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import INTERVAL
from sqlalchemy.orm import Session

from backend_sample.errors import DomainError, FxRateMissing
from backend_sample.models import Account, JournalEntry, JournalLine, Workspace
from backend_sample.services.accounts import get_account
from backend_sample.services.fx import rate_subquery

ZERO = Decimal("0.00")


def cast_decimal(value: object) -> Decimal:
    """Narrow a report cell to Decimal (they come from NUMERIC columns)."""
    assert isinstance(value, Decimal)
    return value


DEBIT_NORMAL = ("asset", "expense")
"""Account types whose balance is debit minus credit; the others are credit-normal."""


@dataclass(frozen=True)
class Period:
    """An inclusive date range; ``start`` None means "since the beginning"."""

    start: dt.date | None
    end: dt.date

    def __post_init__(self) -> None:
        if self.start is not None and self.start > self.end:
            raise DomainError(f"date_from {self.start} is after date_to {self.end}")


def _posted_in(workspace_id: int, period: Period) -> list[object]:
    conditions: list[object] = [
        JournalEntry.workspace_id == workspace_id,
        JournalEntry.status == "posted",
        JournalEntry.entry_date <= period.end,
    ]
    if period.start is not None:
        conditions.append(JournalEntry.entry_date >= period.start)
    return conditions


def _rate(workspace: Workspace):  # type: ignore[no-untyped-def]
    return case(
        (JournalEntry.currency == workspace.reporting_currency, literal(Decimal(1), Numeric)),
        else_=rate_subquery(
            workspace.id,
            JournalEntry.currency,
            workspace.reporting_currency,
            JournalEntry.entry_date,
        ),
    )


def _ensure_rates(session: Session, workspace: Workspace, period: Period) -> None:
    """Raise :class:`FxRateMissing` for the earliest entry that cannot be converted."""
    stmt = (
        select(JournalEntry.currency, JournalEntry.entry_date)
        .where(
            *_posted_in(workspace.id, period),  # type: ignore[arg-type]
            JournalEntry.currency != workspace.reporting_currency,
            rate_subquery(
                workspace.id,
                JournalEntry.currency,
                workspace.reporting_currency,
                JournalEntry.entry_date,
            ).is_(None),
        )
        .order_by(JournalEntry.entry_date, JournalEntry.currency)
        .limit(1)
    )
    row = session.execute(stmt).first()
    if row is not None:
        raise FxRateMissing(row.currency, workspace.reporting_currency, row.entry_date)


def converted_lines(session: Session, workspace: Workspace, period: Period) -> Subquery:
    """Posted lines of the period with debit/credit in the reporting currency."""
    _ensure_rates(session, workspace, period)
    rate = _rate(workspace)
    return (
        select(
            JournalLine.account_id,
            JournalLine.entry_id,
            JournalLine.id.label("line_id"),
            JournalEntry.entry_date,
            JournalEntry.description,
            func.round(JournalLine.debit * rate, 2).label("debit"),
            func.round(JournalLine.credit * rate, 2).label("credit"),
        )
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .where(*_posted_in(workspace.id, period))  # type: ignore[arg-type]
        .subquery("converted")
    )


def _balance_expr(debit: Any, credit: Any) -> Any:
    """Signed balance in the account's natural direction (debit- or credit-normal)."""
    return case(
        (Account.type.in_(DEBIT_NORMAL), debit - credit),
        else_=credit - debit,
    )


def _per_account(session: Session, workspace: Workspace, period: Period) -> Select:  # type: ignore[type-arg]
    lines = converted_lines(session, workspace, period)
    debit = func.coalesce(func.sum(lines.c.debit), 0)
    credit = func.coalesce(func.sum(lines.c.credit), 0)
    return (
        select(
            Account.id,
            Account.code,
            Account.name,
            Account.type,
            debit.label("debit"),
            credit.label("credit"),
            _balance_expr(debit, credit).label("balance"),
        )
        .join(lines, lines.c.account_id == Account.id)
        .group_by(Account.id)
        .order_by(Account.code)
    )


def trial_balance(
    session: Session, workspace: Workspace, date_from: dt.date | None, date_to: dt.date
) -> dict[str, object]:
    """Per-account debit/credit totals and net balance, plus column totals."""
    rows = session.execute(_per_account(session, workspace, Period(date_from, date_to))).all()
    accounts = []
    for row in rows:
        net = row.debit - row.credit
        accounts.append(
            {
                "account_id": row.id,
                "code": row.code,
                "name": row.name,
                "type": row.type,
                "debit": row.debit,
                "credit": row.credit,
                "net_debit": net if net > 0 else ZERO,
                "net_credit": -net if net < 0 else ZERO,
            }
        )
    total_debit = sum((a["debit"] for a in accounts), ZERO)
    total_credit = sum((a["credit"] for a in accounts), ZERO)
    return {
        "currency": workspace.reporting_currency,
        "date_from": date_from,
        "date_to": date_to,
        "accounts": accounts,
        "total_debit": total_debit,
        "total_credit": total_credit,
        "balanced": total_debit == total_credit,
    }


def balance_sheet(session: Session, workspace: Workspace, as_of: dt.date) -> dict[str, object]:
    """Assets = liabilities + equity, with unclosed income/expense as current earnings."""
    rows = session.execute(_per_account(session, workspace, Period(None, as_of))).all()
    sections: dict[str, list[dict[str, object]]] = {"asset": [], "liability": [], "equity": []}
    earnings = ZERO
    for row in rows:
        if row.type in sections:
            sections[row.type].append(
                {"account_id": row.id, "code": row.code, "name": row.name, "balance": row.balance}
            )
        elif row.type == "income":
            earnings += row.balance
        else:
            earnings -= row.balance

    def total(kind: str) -> Decimal:
        return sum((cast_decimal(a["balance"]) for a in sections[kind]), ZERO)

    total_assets = total("asset")
    total_liabilities = total("liability")
    total_equity = total("equity") + earnings
    return {
        "currency": workspace.reporting_currency,
        "as_of": as_of,
        "assets": sections["asset"],
        "liabilities": sections["liability"],
        "equity": sections["equity"],
        "current_earnings": earnings,
        "total_assets": total_assets,
        "total_liabilities": total_liabilities,
        "total_equity": total_equity,
        "balanced": total_assets == total_liabilities + total_equity,
    }


def income_statement(
    session: Session, workspace: Workspace, date_from: dt.date | None, date_to: dt.date
) -> dict[str, object]:
    """Income and expense accounts for the period and the resulting net income."""
    stmt = _per_account(session, workspace, Period(date_from, date_to)).where(
        Account.type.in_(("income", "expense"))
    )
    rows = session.execute(stmt).all()
    income = [
        {"account_id": r.id, "code": r.code, "name": r.name, "amount": r.balance}
        for r in rows
        if r.type == "income"
    ]
    expenses = [
        {"account_id": r.id, "code": r.code, "name": r.name, "amount": r.balance}
        for r in rows
        if r.type == "expense"
    ]
    total_income = sum((a["amount"] for a in income), ZERO)
    total_expenses = sum((a["amount"] for a in expenses), ZERO)
    return {
        "currency": workspace.reporting_currency,
        "date_from": date_from,
        "date_to": date_to,
        "income": income,
        "expenses": expenses,
        "total_income": total_income,
        "total_expenses": total_expenses,
        "net_income": total_income - total_expenses,
    }


def monthly_cash_flow(
    session: Session, workspace: Workspace, date_from: dt.date, date_to: dt.date
) -> dict[str, object]:
    """Cash in/out per calendar month over the workspace's cash accounts.

    Each entry's effect on cash is netted first, so a transfer between two cash
    accounts is neither inflow nor outflow. Months without movement are listed with
    zeros (``generate_series``) and the running closing balance is a window sum.
    """
    period = Period(date_from, date_to)
    everything = converted_lines(session, workspace, Period(None, date_to))
    cash_ids = select(Account.id).where(
        Account.workspace_id == workspace.id, Account.is_cash.is_(True)
    )
    cash = everything.c.account_id.in_(cash_ids)
    opening = session.scalar(
        select(func.coalesce(func.sum(everything.c.debit - everything.c.credit), 0)).where(
            cash, everything.c.entry_date < date_from
        )
    )
    per_entry = (
        select(
            func.date_trunc("month", everything.c.entry_date).label("month"),
            func.sum(everything.c.debit - everything.c.credit).label("delta"),
        )
        .where(cash, everything.c.entry_date >= date_from)
        .group_by(everything.c.entry_id, everything.c.entry_date)
        .subquery("per_entry")
    )
    per_month = (
        select(
            per_entry.c.month,
            func.sum(func.greatest(per_entry.c.delta, 0)).label("inflow"),
            func.sum(func.greatest(-per_entry.c.delta, 0)).label("outflow"),
        )
        .group_by(per_entry.c.month)
        .subquery("per_month")
    )
    months = select(
        func.generate_series(
            func.date_trunc("month", cast(literal(date_from), Date)),
            func.date_trunc("month", cast(literal(date_to), Date)),
            literal("1 month").cast(INTERVAL()),
        ).label("month")
    ).subquery("months")
    inflow = func.coalesce(per_month.c.inflow, 0)
    outflow = func.coalesce(per_month.c.outflow, 0)
    net = inflow - outflow
    stmt = (
        select(
            cast(months.c.month, Date).label("month"),
            inflow.label("inflow"),
            outflow.label("outflow"),
            net.label("net"),
            (literal(opening, Numeric) + func.sum(net).over(order_by=months.c.month)).label(
                "closing"
            ),
        )
        .select_from(months.outerjoin(per_month, and_(per_month.c.month == months.c.month)))
        .order_by(months.c.month)
    )
    rows = session.execute(stmt).all()
    return {
        "currency": workspace.reporting_currency,
        "date_from": period.start,
        "date_to": period.end,
        "opening_balance": opening,
        "months": [
            {
                "month": row.month.strftime("%Y-%m"),
                "inflow": row.inflow,
                "outflow": row.outflow,
                "net": row.net,
                "closing_balance": row.closing,
            }
            for row in rows
        ],
        "total_inflow": sum((row.inflow for row in rows), ZERO),
        "total_outflow": sum((row.outflow for row in rows), ZERO),
        "closing_balance": rows[-1].closing if rows else opening,
    }


def account_ledger(
    session: Session,
    workspace: Workspace,
    account_id: int,
    date_from: dt.date | None,
    date_to: dt.date,
) -> dict[str, object]:
    """An account's posted lines with a running balance (window function)."""
    account = get_account(session, workspace.id, account_id)
    lines = converted_lines(session, workspace, Period(None, date_to))
    start = date_from or dt.date.min
    signed = _signed(account.type, lines.c.debit, lines.c.credit)
    opening = session.scalar(
        select(func.coalesce(func.sum(signed), 0)).where(
            lines.c.account_id == account.id, lines.c.entry_date < start
        )
    )
    running = literal(opening, Numeric) + func.sum(signed).over(
        order_by=(lines.c.entry_date, lines.c.entry_id, lines.c.line_id)
    )
    stmt = (
        select(
            lines.c.entry_id,
            lines.c.line_id,
            lines.c.entry_date,
            lines.c.description,
            lines.c.debit,
            lines.c.credit,
            running.label("balance"),
        )
        .where(lines.c.account_id == account.id, lines.c.entry_date >= start)
        .order_by(lines.c.entry_date, lines.c.entry_id, lines.c.line_id)
    )
    rows = session.execute(stmt).all()
    return {
        "account_id": account.id,
        "code": account.code,
        "currency": workspace.reporting_currency,
        "opening_balance": opening,
        "lines": [row._asdict() for row in rows],
        "closing_balance": rows[-1].balance if rows else opening,
    }


def _signed(account_type: str, debit, credit):  # type: ignore[no-untyped-def]
    return debit - credit if account_type in DEBIT_NORMAL else credit - debit
