"""Currency reference data (seeded by migration 0005)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend_sample.errors import DomainError
from backend_sample.models import Currency


def list_currencies(session: Session) -> list[Currency]:
    """All known currencies, by code."""
    return list(session.scalars(select(Currency).order_by(Currency.code)))


def require_currency(session: Session, code: str) -> Currency:
    """Return the currency or fail with a message naming the unknown code."""
    currency = session.get(Currency, code)
    if currency is None:
        raise DomainError(f"unknown currency {code!r}")
    return currency
