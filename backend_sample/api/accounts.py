"""Chart of accounts endpoints."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, status

from backend_sample import schemas
from backend_sample.api.deps import CallerDep, SessionDep
from backend_sample.services import accounts as service
from backend_sample.services import reports as report_service

router = APIRouter(prefix="/accounts", tags=["accounts"])


@router.get("")
def list_accounts(
    caller: CallerDep,
    session: SessionDep,
    type: schemas.AccountType | None = None,
    include_archived: bool = False,
) -> list[schemas.AccountOut]:
    accounts = service.list_accounts(session, caller.workspace_id, type, include_archived)
    return [schemas.AccountOut.model_validate(a) for a in accounts]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_account(
    body: schemas.AccountCreate, caller: CallerDep, session: SessionDep
) -> schemas.AccountOut:
    account = service.create_account(
        session,
        caller.workspace_id,
        body.code,
        body.name,
        body.type,
        body.parent_id,
        body.is_cash,
    )
    return schemas.AccountOut.model_validate(account)


@router.get("/{account_id}")
def get_account(account_id: int, caller: CallerDep, session: SessionDep) -> schemas.AccountOut:
    return schemas.AccountOut.model_validate(
        service.get_account(session, caller.workspace_id, account_id)
    )


@router.patch("/{account_id}")
def update_account(
    account_id: int, body: schemas.AccountUpdate, caller: CallerDep, session: SessionDep
) -> schemas.AccountOut:
    account = service.update_account(
        session,
        caller.workspace_id,
        account_id,
        name=body.name,
        parent_id=body.parent_id,
        clear_parent="parent_id" in body.model_fields_set and body.parent_id is None,
        is_cash=body.is_cash,
    )
    return schemas.AccountOut.model_validate(account)


@router.post("/{account_id}/archive")
def archive_account(account_id: int, caller: CallerDep, session: SessionDep) -> schemas.AccountOut:
    account = service.set_archived(session, caller.workspace_id, account_id, archived=True)
    return schemas.AccountOut.model_validate(account)


@router.post("/{account_id}/unarchive")
def unarchive_account(
    account_id: int, caller: CallerDep, session: SessionDep
) -> schemas.AccountOut:
    account = service.set_archived(session, caller.workspace_id, account_id, archived=False)
    return schemas.AccountOut.model_validate(account)


@router.get("/{account_id}/ledger")
def account_ledger(
    account_id: int,
    caller: CallerDep,
    session: SessionDep,
    date_to: dt.date,
    date_from: dt.date | None = None,
) -> schemas.Ledger:
    """Posted lines with running balance, in the reporting currency."""
    return schemas.Ledger.model_validate(
        report_service.account_ledger(session, caller.workspace, account_id, date_from, date_to)
    )
