"""Journal entry endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Response, status

from backend_sample import schemas
from backend_sample.api.deps import CallerDep, SessionDep
from backend_sample.services import journal as service

router = APIRouter(prefix="/journal-entries", tags=["journal"])


def _lines(lines: list[schemas.LineIn]) -> list[service.LineInput]:
    return [
        service.LineInput(account_id=ln.account_id, debit=ln.debit, credit=ln.credit, memo=ln.memo)
        for ln in lines
    ]


def _out(entry: object) -> schemas.EntryOut:
    return schemas.EntryOut.model_validate(entry)


@router.get("")
def list_entries(
    caller: CallerDep,
    session: SessionDep,
    status: Literal["draft", "posted", "void"] | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    account_id: int | None = None,
) -> list[schemas.EntryOut]:
    entries = service.list_entries(
        session, caller.workspace_id, status, date_from, date_to, account_id
    )
    return [_out(e) for e in entries]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_entry(
    body: schemas.EntryCreate, caller: CallerDep, session: SessionDep
) -> schemas.EntryOut:
    entry = service.create_entry(
        session,
        caller.workspace,
        body.entry_date,
        body.description,
        _lines(body.lines),
        currency=body.currency,
        reference=body.reference,
        post=body.post,
    )
    return _out(entry)


@router.get("/{entry_id}")
def get_entry(entry_id: int, caller: CallerDep, session: SessionDep) -> schemas.EntryOut:
    return _out(service.get_entry(session, caller.workspace_id, entry_id))


@router.patch("/{entry_id}")
def update_entry(
    entry_id: int, body: schemas.EntryUpdate, caller: CallerDep, session: SessionDep
) -> schemas.EntryOut:
    entry = service.update_entry(
        session,
        caller.workspace_id,
        entry_id,
        entry_date=body.entry_date,
        description=body.description,
        reference=body.reference,
        lines=_lines(body.lines) if body.lines is not None else None,
    )
    return _out(entry)


@router.delete("/{entry_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_entry(entry_id: int, caller: CallerDep, session: SessionDep) -> Response:
    service.delete_entry(session, caller.workspace_id, entry_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{entry_id}/post")
def post_entry(entry_id: int, caller: CallerDep, session: SessionDep) -> schemas.EntryOut:
    return _out(service.post_entry(session, caller.workspace_id, entry_id))


@router.post("/{entry_id}/void")
def void_entry(entry_id: int, caller: CallerDep, session: SessionDep) -> schemas.EntryOut:
    return _out(service.void_entry(session, caller.workspace_id, entry_id))


@router.post("/{entry_id}/reverse", status_code=status.HTTP_201_CREATED)
def reverse_entry(
    entry_id: int, caller: CallerDep, session: SessionDep, body: schemas.ReverseIn | None = None
) -> schemas.EntryOut:
    entry_date = body.entry_date if body is not None else None
    return _out(service.reverse_entry(session, caller.workspace, entry_id, entry_date))
