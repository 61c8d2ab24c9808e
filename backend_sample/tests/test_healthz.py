"""/healthz: reports the commit and whether the database answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import URL
from sqlalchemy.orm import Session

from backend_sample.app import create_app
from backend_sample.config import Settings
from backend_sample.db import get_session


def test_ok_with_commit(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "commit": "abc123"}


def test_needs_no_api_key(client: TestClient) -> None:
    assert "X-API-Key" not in client.headers
    assert client.get("/healthz").json()["status"] == "ok"


def test_commit_defaults_to_unknown(monkeypatch: pytest.MonkeyPatch, db_session: Session) -> None:
    monkeypatch.delenv("APP_COMMIT", raising=False)
    app = create_app(Settings(DATABASE_URL=None))

    def override() -> Iterator[Session]:
        yield db_session

    app.dependency_overrides[get_session] = override
    assert TestClient(app).get("/healthz").json() == {"status": "ok", "commit": "unknown"}


def test_commit_from_environment(monkeypatch: pytest.MonkeyPatch, db_url: URL) -> None:
    monkeypatch.setenv("APP_COMMIT", "deadbeef")
    monkeypatch.setenv("DATABASE_URL", db_url.render_as_string(hide_password=False))
    app = create_app()
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "ok", "commit": "deadbeef"}
    app.state.engine.dispose()


def test_real_engine_path(db_url: URL) -> None:
    app = create_app(
        Settings(DATABASE_URL=db_url.render_as_string(hide_password=False), APP_COMMIT="c1")
    )
    response = TestClient(app).get("/healthz")
    app.state.engine.dispose()
    assert response.json() == {"status": "ok", "commit": "c1"}


def test_database_down_is_503(db_url: URL) -> None:
    # query={} drops a Unix-socket "host" parameter, which would win over host=.
    unreachable = db_url.set(port=1, host="127.0.0.1", query={})
    app = create_app(
        Settings(DATABASE_URL=unreachable.render_as_string(hide_password=False), APP_COMMIT="c2")
    )
    response = TestClient(app).get("/healthz")
    app.state.engine.dispose()
    assert response.status_code == 503
    assert response.json() == {"status": "error", "detail": "database unavailable", "commit": "c2"}


def test_no_database_configured_is_503() -> None:
    app = create_app(Settings(DATABASE_URL=None))
    response = TestClient(app).get("/healthz")
    assert response.status_code == 503
    assert "DATABASE_URL" in response.json()["detail"]
