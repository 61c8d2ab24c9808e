"""Application factory.

``create_app`` builds the engine lazily-by-construction (SQLAlchemy connects on
first use), so importing this module has no side effects; run the server with
``uvicorn backend_sample.app:create_app --factory``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from backend_sample.api import (
    accounts,
    fx,
    health,
    imports,
    journal,
    reconcile,
    reports,
    workspaces,
)
from backend_sample.config import Settings, get_settings
from backend_sample.db import make_engine, make_sessionmaker
from backend_sample.errors import DomainError


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app for the given (or environment) settings."""
    settings = settings or get_settings()
    app = FastAPI(title="backend_sample finance reports", version="1.0.0")
    app.state.settings = settings
    if settings.DATABASE_URL:
        engine = make_engine(settings.DATABASE_URL)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)

    @app.exception_handler(DomainError)
    def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        body: dict[str, object] = {"detail": exc.message}
        if exc.details is not None:
            body["errors"] = exc.details
        headers = {"WWW-Authenticate": "ApiKey"} if exc.status_code == 401 else None
        return JSONResponse(status_code=exc.status_code, content=body, headers=headers)

    for router in (
        health.router,
        workspaces.router,
        accounts.router,
        journal.router,
        fx.router,
        imports.router,
        reconcile.router,
        reports.router,
    ):
        app.include_router(router)
    return app
