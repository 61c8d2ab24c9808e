"""Report endpoints; all figures are in the workspace's reporting currency."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter

from backend_sample import schemas
from backend_sample.api.deps import CallerDep, SessionDep
from backend_sample.services import reports as service

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/trial-balance")
def trial_balance(
    caller: CallerDep, session: SessionDep, date_to: dt.date, date_from: dt.date | None = None
) -> schemas.TrialBalance:
    return schemas.TrialBalance.model_validate(
        service.trial_balance(session, caller.workspace, date_from, date_to)
    )


@router.get("/balance-sheet")
def balance_sheet(caller: CallerDep, session: SessionDep, as_of: dt.date) -> schemas.BalanceSheet:
    return schemas.BalanceSheet.model_validate(
        service.balance_sheet(session, caller.workspace, as_of)
    )


@router.get("/income-statement")
def income_statement(
    caller: CallerDep, session: SessionDep, date_to: dt.date, date_from: dt.date | None = None
) -> schemas.IncomeStatement:
    return schemas.IncomeStatement.model_validate(
        service.income_statement(session, caller.workspace, date_from, date_to)
    )


@router.get("/cash-flow")
def cash_flow(
    caller: CallerDep, session: SessionDep, date_from: dt.date, date_to: dt.date
) -> schemas.CashFlow:
    return schemas.CashFlow.model_validate(
        service.monthly_cash_flow(session, caller.workspace, date_from, date_to)
    )
