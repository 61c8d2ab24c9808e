"""Liveness/readiness probe used by deployments and the E2E smoke tests."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from backend_sample.api.deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(request: Request, session: SessionDep) -> JSONResponse:
    """Report ok only when the database answers; 503 tells the balancer to back off."""
    commit = request.app.state.settings.APP_COMMIT
    try:
        session.execute(text("SELECT 1")).scalar_one()
    except SQLAlchemyError:
        return JSONResponse(
            status_code=503,
            content={"status": "error", "detail": "database unavailable", "commit": commit},
        )
    return JSONResponse({"status": "ok", "commit": commit})
