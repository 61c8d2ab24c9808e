"""Exchange-rate endpoints."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, status

from backend_sample import schemas
from backend_sample.api.deps import CallerDep, SessionDep
from backend_sample.services import fx as service

router = APIRouter(prefix="/fx", tags=["fx"])


@router.put("/rates", status_code=status.HTTP_200_OK)
def set_rate(body: schemas.FxRateIn, caller: CallerDep, session: SessionDep) -> schemas.FxRateOut:
    """Create or correct the rate of a pair for a day (idempotent)."""
    rate = service.set_rate(
        session,
        caller.workspace_id,
        body.base_currency,
        body.quote_currency,
        body.rate_date,
        body.rate,
    )
    return schemas.FxRateOut.model_validate(rate)


@router.get("/rates")
def list_rates(
    caller: CallerDep,
    session: SessionDep,
    base: str | None = None,
    quote: str | None = None,
) -> list[schemas.FxRateOut]:
    rates = service.list_rates(session, caller.workspace_id, base, quote)
    return [schemas.FxRateOut.model_validate(r) for r in rates]


@router.get("/convert")
def convert(
    caller: CallerDep,
    session: SessionDep,
    amount: Annotated[Decimal, Query(max_digits=18, decimal_places=2)],
    base: str,
    quote: str,
    on: dt.date,
) -> schemas.ConversionOut:
    """Convert an amount with the rate applicable on a date."""
    rate = service.get_rate(session, caller.workspace_id, base, quote, on)
    converted = service.convert(session, caller.workspace_id, amount, base, quote, on)
    return schemas.ConversionOut(
        base_currency=base,
        quote_currency=quote,
        on=on,
        rate=rate,
        amount=amount,
        converted=converted,
    )
