"""App factory, settings and the error mapping."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend_sample.app import create_app
from backend_sample.config import Settings, get_settings
from backend_sample.errors import (
    Conflict,
    DomainError,
    Forbidden,
    FxRateMissing,
    ImportRejected,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("ADMIN_TOKEN", "t0k3n")
    monkeypatch.setenv("APP_COMMIT", "1234567")
    settings = get_settings()
    assert (settings.DATABASE_URL, settings.ADMIN_TOKEN, settings.APP_COMMIT) == (
        "postgresql+psycopg://u@h/db",
        "t0k3n",
        "1234567",
    )


def test_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "ADMIN_TOKEN", "APP_COMMIT"):
        monkeypatch.delenv(name, raising=False)
    settings = get_settings()
    assert (settings.DATABASE_URL, settings.ADMIN_TOKEN, settings.APP_COMMIT) == (
        None,
        None,
        "unknown",
    )


def test_settings_are_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_COMMIT", "one")
    first = get_settings()
    monkeypatch.setenv("APP_COMMIT", "two")
    assert (first.APP_COMMIT, get_settings().APP_COMMIT) == ("one", "two")


def test_create_app_without_database_has_no_engine() -> None:
    app = create_app(Settings(DATABASE_URL=None))
    assert not hasattr(app.state, "engine")


def test_create_app_does_not_connect() -> None:
    app = create_app(Settings(DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/nothing"))
    assert app.state.engine.pool.checkedout() == 0
    app.state.engine.dispose()


def test_openapi_lists_all_domains() -> None:
    schema = TestClient(create_app(Settings())).get("/openapi.json").json()
    tags = {tag for path in schema["paths"].values() for op in path.values() for tag in op["tags"]}
    assert tags == {
        "health",
        "workspaces",
        "accounts",
        "journal",
        "fx",
        "imports",
        "reconciliation",
        "reports",
    }


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (DomainError("x"), 422),
        (NotFound("x"), 404),
        (Conflict("x"), 409),
        (Unauthorized("x"), 401),
        (Forbidden("x"), 403),
        (ServiceUnavailable("x"), 503),
        (ImportRejected("x", details=[]), 422),
        (FxRateMissing("EUR", "USD", "2024-01-01"), 422),
    ],
)
def test_status_codes(error: DomainError, status: int) -> None:
    assert error.status_code == status
    assert str(error) == error.message
