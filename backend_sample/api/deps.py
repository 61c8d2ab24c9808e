"""Shared FastAPI dependencies: the DB session and the caller's workspace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header
from sqlalchemy.orm import Session

from backend_sample.db import get_session
from backend_sample.models import ApiKey, Workspace
from backend_sample.services.workspaces import authenticate

SessionDep = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True)
class Caller:
    """The authenticated workspace and the key it used."""

    workspace: Workspace
    api_key: ApiKey

    @property
    def workspace_id(self) -> int:
        return self.workspace.id


def get_caller(
    session: SessionDep,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Caller:
    """Authenticate ``X-API-Key``; every workspace-scoped route depends on this."""
    workspace, api_key = authenticate(session, x_api_key)
    return Caller(workspace, api_key)


CallerDep = Annotated[Caller, Depends(get_caller)]
