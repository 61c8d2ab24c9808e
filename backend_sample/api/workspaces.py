"""Workspace bootstrap, workspace settings, API keys and currencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, status

from backend_sample import schemas
from backend_sample.api.deps import CallerDep, SessionDep
from backend_sample.services import currencies as currency_service
from backend_sample.services import workspaces as service

router = APIRouter(tags=["workspaces"])


@router.post("/workspaces", status_code=status.HTTP_201_CREATED)
def create_workspace(
    body: schemas.WorkspaceCreate,
    request: Request,
    session: SessionDep,
    x_admin_token: Annotated[str | None, Header()] = None,
) -> schemas.WorkspaceCreated:
    """Bootstrap a workspace (admin token) and return its first key, once."""
    service.check_admin_token(request.app.state.settings.ADMIN_TOKEN, x_admin_token)
    workspace, api_key, raw = service.create_workspace(session, body.name, body.reporting_currency)
    return schemas.WorkspaceCreated(
        workspace=schemas.WorkspaceOut.model_validate(workspace),
        api_key=schemas.ApiKeyCreated(
            **schemas.ApiKeyOut.model_validate(api_key).model_dump(), key=raw
        ),
    )


@router.get("/workspace")
def get_workspace(caller: CallerDep) -> schemas.WorkspaceOut:
    """The workspace the API key belongs to."""
    return schemas.WorkspaceOut.model_validate(caller.workspace)


@router.patch("/workspace")
def update_workspace(
    body: schemas.WorkspaceUpdate, caller: CallerDep, session: SessionDep
) -> schemas.WorkspaceOut:
    workspace = service.update_workspace(
        session, caller.workspace, body.name, body.reporting_currency
    )
    return schemas.WorkspaceOut.model_validate(workspace)


@router.get("/api-keys")
def list_keys(caller: CallerDep, session: SessionDep) -> list[schemas.ApiKeyOut]:
    return [
        schemas.ApiKeyOut.model_validate(k)
        for k in service.list_api_keys(session, caller.workspace_id)
    ]


@router.post("/api-keys", status_code=status.HTTP_201_CREATED)
def create_key(
    body: schemas.ApiKeyCreate, caller: CallerDep, session: SessionDep
) -> schemas.ApiKeyCreated:
    api_key, raw = service.create_api_key(session, caller.workspace_id, body.name)
    return schemas.ApiKeyCreated(**schemas.ApiKeyOut.model_validate(api_key).model_dump(), key=raw)


@router.delete("/api-keys/{key_id}")
def revoke_key(key_id: int, caller: CallerDep, session: SessionDep) -> schemas.ApiKeyOut:
    api_key = service.revoke_api_key(session, caller.workspace_id, key_id, caller.api_key.id)
    return schemas.ApiKeyOut.model_validate(api_key)


@router.get("/currencies")
def list_currencies(caller: CallerDep, session: SessionDep) -> list[schemas.CurrencyOut]:
    return [
        schemas.CurrencyOut.model_validate(c) for c in currency_service.list_currencies(session)
    ]
