"""Workspace bootstrap, settings and API keys over HTTP."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend_sample.models import ApiKey, Workspace
from backend_sample.services.workspaces import hash_key
from backend_sample.tests.conftest import ADMIN_HEADER_VALUE
from backend_sample.tests.factories import Tenant

ADMIN = {"X-Admin-Token": ADMIN_HEADER_VALUE}


def test_bootstrap_creates_workspace_and_returns_key_once(
    client: TestClient, db_session: Session
) -> None:
    response = client.post("/workspaces", json={"name": "Acme"}, headers=ADMIN)
    assert response.status_code == 201
    body = response.json()
    assert body["workspace"]["name"] == "Acme"
    assert body["workspace"]["reporting_currency"] == "USD"
    key = body["api_key"]["key"]
    assert key.startswith("bsk_")
    stored = db_session.scalars(select(ApiKey).where(ApiKey.id == body["api_key"]["id"])).one()
    assert stored.key_hash == hash_key(key)
    assert key not in stored.key_hash
    assert body["api_key"]["prefix"] == key[:12]


def test_bootstrap_key_works_for_requests(client: TestClient) -> None:
    created = client.post("/workspaces", json={"name": "Beta"}, headers=ADMIN).json()
    response = client.get("/workspace", headers={"X-API-Key": created["api_key"]["key"]})
    assert response.status_code == 200
    assert response.json()["id"] == created["workspace"]["id"]


@pytest.mark.parametrize("currency", ["EUR", "GBP", "JPY", "CHF"])
def test_bootstrap_with_reporting_currency(
    client: TestClient, db_session: Session, currency: str
) -> None:
    body = client.post(
        "/workspaces", json={"name": "FX", "reporting_currency": currency}, headers=ADMIN
    ).json()
    workspace = db_session.get(Workspace, body["workspace"]["id"])
    assert workspace is not None
    assert workspace.reporting_currency == currency


def test_bootstrap_unknown_currency_is_rejected(client: TestClient, db_session: Session) -> None:
    before = db_session.scalars(select(Workspace)).all()
    response = client.post(
        "/workspaces", json={"name": "X", "reporting_currency": "XYZ"}, headers=ADMIN
    )
    assert response.status_code == 422
    assert "XYZ" in response.json()["detail"]
    assert db_session.scalars(select(Workspace)).all() == before


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"X-Admin-Token": "wrong"}, 401), ({"X-Admin-Token": ""}, 401)],
)
def test_bootstrap_requires_admin_token(
    client: TestClient, db_session: Session, headers: dict[str, str], status: int
) -> None:
    response = client.post("/workspaces", json={"name": "Nope"}, headers=headers)
    assert response.status_code == status
    assert response.json()["detail"] == "invalid admin token"
    assert db_session.scalar(select(Workspace).where(Workspace.name == "Nope")) is None


@pytest.mark.parametrize(
    "payload",
    [{}, {"name": ""}, {"name": "x" * 201}, {"name": "ok", "reporting_currency": "usd"}],
)
def test_bootstrap_validates_body(client: TestClient, payload: dict[str, str]) -> None:
    response = client.post("/workspaces", json=payload, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_get_workspace_returns_callers_workspace(api: TestClient, tenant: Tenant) -> None:
    body = api.get("/workspace").json()
    assert body == {
        "id": tenant.id,
        "name": tenant.workspace.name,
        "reporting_currency": "USD",
        "created_at": body["created_at"],
    }


def test_patch_workspace_renames(api: TestClient, db_session: Session, tenant: Tenant) -> None:
    response = api.patch("/workspace", json={"name": "Renamed Ltd"})
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed Ltd"
    db_session.expire_all()
    assert db_session.get(Workspace, tenant.id).name == "Renamed Ltd"  # type: ignore[union-attr]


def test_patch_workspace_changes_reporting_currency(api: TestClient) -> None:
    assert (
        api.patch("/workspace", json={"reporting_currency": "EUR"}).json()["reporting_currency"]
        == "EUR"
    )
    assert api.get("/workspace").json()["reporting_currency"] == "EUR"


def test_patch_workspace_unknown_currency(api: TestClient) -> None:
    response = api.patch("/workspace", json={"reporting_currency": "ABC"})
    assert response.status_code == 422
    assert api.get("/workspace").json()["reporting_currency"] == "USD"


def test_list_keys_shows_no_secret(api: TestClient, tenant: Tenant) -> None:
    keys = api.get("/api-keys").json()
    assert len(keys) == 1
    assert "key" not in keys[0]
    assert "key_hash" not in keys[0]
    assert keys[0]["prefix"] == tenant.key[:12]


def test_create_additional_key(api: TestClient, tenant: Tenant) -> None:
    created = api.post("/api-keys", json={"name": "ci"})
    assert created.status_code == 201
    new_key = created.json()["key"]
    assert new_key != tenant.key
    names = [k["name"] for k in api.get("/api-keys").json()]
    assert names == ["default", "ci"]
    assert api.get("/workspace", headers={"X-API-Key": new_key}).json()["id"] == tenant.id


def test_revoke_other_key_blocks_it(api: TestClient) -> None:
    created = api.post("/api-keys", json={"name": "temp"}).json()
    revoked = api.delete(f"/api-keys/{created['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    response = api.get("/workspace", headers={"X-API-Key": created["key"]})
    assert response.status_code == 401
    assert response.json()["detail"] == "API key has been revoked"


def test_revoke_is_idempotent(api: TestClient) -> None:
    created = api.post("/api-keys", json={"name": "temp"}).json()
    first = api.delete(f"/api-keys/{created['id']}").json()
    second = api.delete(f"/api-keys/{created['id']}").json()
    assert first["revoked_at"] == second["revoked_at"]


def test_key_cannot_revoke_itself(api: TestClient, db_session: Session, tenant: Tenant) -> None:
    own = api.get("/api-keys").json()[0]
    response = api.delete(f"/api-keys/{own['id']}")
    assert response.status_code == 403
    assert api.get("/workspace").status_code == 200


def test_revoke_other_workspaces_key_is_404(
    api: TestClient, db_session: Session, other_tenant: Tenant
) -> None:
    other_key = db_session.scalars(
        select(ApiKey).where(ApiKey.workspace_id == other_tenant.id)
    ).one()
    response = api.delete(f"/api-keys/{other_key.id}")
    assert response.status_code == 404
    db_session.refresh(other_key)
    assert other_key.revoked_at is None


def test_list_currencies(api: TestClient) -> None:
    currencies = {c["code"]: c for c in api.get("/currencies").json()}
    assert {"USD", "EUR", "GBP", "JPY"} <= currencies.keys()
    assert currencies["JPY"]["minor_units"] == 0
    assert currencies["EUR"]["name"] == "Euro"
