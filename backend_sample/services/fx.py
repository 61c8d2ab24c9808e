"""Exchange rates and conversion.

A rate is valid from its date until the next rate for the same pair, so the rate
for a day is the latest one *on or before* it. Only the stored direction is used
(``base -> quote``); silently inverting rates would hide a missing feed.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import ColumnElement, Date, SQLColumnExpression, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backend_sample.errors import DomainError, FxRateMissing
from backend_sample.models import FxRate
from backend_sample.services.common import quantize_money
from backend_sample.services.currencies import require_currency


def set_rate(
    session: Session,
    workspace_id: int,
    base: str,
    quote: str,
    rate_date: dt.date,
    rate: Decimal,
) -> FxRate:
    """Record (or correct) the rate of a pair for a day; upsert keeps it idempotent."""
    if base == quote:
        raise DomainError("base and quote currency must differ")
    if rate <= 0:
        raise DomainError("rate must be positive")
    require_currency(session, base)
    require_currency(session, quote)
    stmt = (
        insert(FxRate)
        .values(
            workspace_id=workspace_id,
            base_currency=base,
            quote_currency=quote,
            rate_date=rate_date,
            rate=rate,
        )
        .on_conflict_do_update(constraint="uq_fx_rates_key", set_={"rate": rate})
        .returning(FxRate.id)
    )
    rate_id = session.execute(stmt).scalar_one()
    session.commit()
    fx_rate = session.get(FxRate, rate_id, populate_existing=True)
    assert fx_rate is not None
    return fx_rate


def list_rates(
    session: Session, workspace_id: int, base: str | None = None, quote: str | None = None
) -> list[FxRate]:
    """Rates of the workspace, optionally for one pair, by pair then date."""
    stmt = select(FxRate).where(FxRate.workspace_id == workspace_id)
    if base is not None:
        stmt = stmt.where(FxRate.base_currency == base)
    if quote is not None:
        stmt = stmt.where(FxRate.quote_currency == quote)
    stmt = stmt.order_by(FxRate.base_currency, FxRate.quote_currency, FxRate.rate_date)
    return list(session.scalars(stmt))


def rate_subquery(
    workspace_id: int, base: SQLColumnExpression[str], quote: str, on: SQLColumnExpression[dt.date]
) -> ColumnElement[Decimal]:
    """Correlated scalar subquery: the rate ``base -> quote`` on or before ``on``.

    Reports embed it so conversion happens inside the aggregate query.
    """
    return (
        select(FxRate.rate)
        .where(
            FxRate.workspace_id == workspace_id,
            FxRate.base_currency == base,
            FxRate.quote_currency == quote,
            FxRate.rate_date <= on,
        )
        .order_by(FxRate.rate_date.desc())
        .limit(1)
        .scalar_subquery()
    )


def get_rate(session: Session, workspace_id: int, base: str, quote: str, on: dt.date) -> Decimal:
    """The applicable rate, 1 for the same currency, or :class:`FxRateMissing`."""
    if base == quote:
        return Decimal(1)
    stmt = select(rate_subquery(workspace_id, literal(base), quote, literal(on, Date)))
    rate = session.scalar(stmt)
    if rate is None:
        raise FxRateMissing(base, quote, on)
    return rate


def convert(
    session: Session, workspace_id: int, amount: Decimal, base: str, quote: str, on: dt.date
) -> Decimal:
    """Convert an amount and round to cents."""
    return quantize_money(amount * get_rate(session, workspace_id, base, quote, on))
