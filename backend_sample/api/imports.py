"""Bank statement import endpoints (raw CSV request body, no multipart needed)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status

from backend_sample import schemas
from backend_sample.api.deps import CallerDep, SessionDep
from backend_sample.services import imports as service

router = APIRouter(tags=["imports"])


@router.post("/accounts/{account_id}/statement-imports", status_code=status.HTTP_201_CREATED)
async def import_statement(
    account_id: int,
    request: Request,
    caller: CallerDep,
    session: SessionDep,
    filename: Annotated[str | None, Query(max_length=255)] = None,
    date_format: str | None = None,
    decimal_separator: Literal[".", ","] = ".",
) -> schemas.ImportBatchOut:
    """Import a CSV statement sent as the request body (``Content-Type: text/csv``)."""
    data = await request.body()
    batch = service.import_statement(
        session,
        caller.workspace_id,
        account_id,
        data,
        filename=filename,
        date_format=date_format,
        decimal_separator=decimal_separator,
    )
    return schemas.ImportBatchOut.model_validate(batch)


@router.get("/statement-imports")
def list_imports(caller: CallerDep, session: SessionDep) -> list[schemas.ImportBatchOut]:
    return [
        schemas.ImportBatchOut.model_validate(b)
        for b in service.list_batches(session, caller.workspace_id)
    ]


@router.get("/statement-lines")
def list_lines(
    caller: CallerDep,
    session: SessionDep,
    account_id: int | None = None,
    unmatched: bool = False,
) -> list[schemas.StatementLineOut]:
    lines = service.list_statement_lines(session, caller.workspace_id, account_id, unmatched)
    return [schemas.StatementLineOut.model_validate(ln) for ln in lines]
