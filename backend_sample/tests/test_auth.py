"""Every workspace-scoped endpoint requires a valid, unrevoked X-API-Key."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend_sample.errors import Forbidden, Unauthorized
from backend_sample.services import workspaces
from backend_sample.tests.factories import Tenant

ENDPOINTS = [
    ("GET", "/workspace"),
    ("PATCH", "/workspace"),
    ("GET", "/api-keys"),
    ("POST", "/api-keys"),
    ("DELETE", "/api-keys/1"),
    ("GET", "/currencies"),
    ("GET", "/accounts"),
    ("POST", "/accounts"),
    ("GET", "/accounts/1"),
    ("PATCH", "/accounts/1"),
    ("POST", "/accounts/1/archive"),
    ("POST", "/accounts/1/unarchive"),
    ("GET", "/accounts/1/ledger?date_to=2024-01-01"),
    ("GET", "/journal-entries"),
    ("POST", "/journal-entries"),
    ("GET", "/journal-entries/1"),
    ("PATCH", "/journal-entries/1"),
    ("DELETE", "/journal-entries/1"),
    ("POST", "/journal-entries/1/post"),
    ("POST", "/journal-entries/1/void"),
    ("POST", "/journal-entries/1/reverse"),
    ("PUT", "/fx/rates"),
    ("GET", "/fx/rates"),
    ("GET", "/fx/convert?amount=1&base=EUR&quote=USD&on=2024-01-01"),
    ("POST", "/accounts/1/statement-imports"),
    ("GET", "/statement-imports"),
    ("GET", "/statement-lines"),
    ("GET", "/reconciliation-rules"),
    ("POST", "/reconciliation-rules"),
    ("PATCH", "/reconciliation-rules/1"),
    ("DELETE", "/reconciliation-rules/1"),
    ("POST", "/accounts/1/reconcile"),
    ("GET", "/accounts/1/reconciliation"),
    ("POST", "/statement-lines/1/match"),
    ("DELETE", "/statement-lines/1/match"),
    ("GET", "/reports/trial-balance?date_to=2024-01-01"),
    ("GET", "/reports/balance-sheet?as_of=2024-01-01"),
    ("GET", "/reports/income-statement?date_to=2024-01-01"),
    ("GET", "/reports/cash-flow?date_from=2024-01-01&date_to=2024-01-31"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_missing_key_is_401(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code in (401, 422)
    if response.status_code == 401:
        assert response.json() == {"detail": "missing X-API-Key header"}
        assert response.headers["WWW-Authenticate"] == "ApiKey"


@pytest.mark.parametrize(("method", "path"), [e for e in ENDPOINTS if e[0] == "GET"])
def test_wrong_key_is_401(client: TestClient, tenant: Tenant, method: str, path: str) -> None:
    response = client.request(method, path, headers={"X-API-Key": tenant.key + "x"})
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid API key"}


@pytest.mark.parametrize(("method", "path"), [e for e in ENDPOINTS if e[0] == "GET"][:6])
def test_revoked_key_is_401(
    client: TestClient, db_session: Session, tenant: Tenant, method: str, path: str
) -> None:
    key, raw = workspaces.create_api_key(db_session, tenant.id, "temp")
    workspaces.revoke_api_key(db_session, tenant.id, key.id)
    response = client.request(method, path, headers={"X-API-Key": raw})
    assert response.status_code == 401
    assert response.json()["detail"] == "API key has been revoked"


def test_authenticate_service(db_session: Session, tenant: Tenant) -> None:
    workspace, key = workspaces.authenticate(db_session, tenant.key)
    assert workspace.id == tenant.id
    assert key.key_hash == workspaces.hash_key(tenant.key)
    with pytest.raises(Unauthorized, match="missing"):
        workspaces.authenticate(db_session, None)
    with pytest.raises(Unauthorized, match="missing"):
        workspaces.authenticate(db_session, "")


@pytest.mark.parametrize(
    ("configured", "given", "error"),
    [
        (None, "anything", Forbidden),
        ("", "anything", Forbidden),
        ("secret", None, Unauthorized),
        ("secret", "Secret", Unauthorized),
        ("secret", "secret ", Unauthorized),
    ],
)
def test_admin_token_check(
    configured: str | None, given: str | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        workspaces.check_admin_token(configured, given)


def test_admin_token_match_passes() -> None:
    assert workspaces.check_admin_token("secret", "secret") is None


def test_bootstrap_disabled_without_admin_token(db_session: Session) -> None:
    from collections.abc import Iterator

    from backend_sample.app import create_app
    from backend_sample.config import Settings
    from backend_sample.db import get_session

    app = create_app(Settings(DATABASE_URL=None, ADMIN_TOKEN=None))

    def override() -> Iterator[Session]:
        yield db_session

    app.dependency_overrides[get_session] = override
    response = TestClient(app).post(
        "/workspaces", json={"name": "x"}, headers={"X-Admin-Token": "guess"}
    )
    assert response.status_code == 403
    assert "disabled" in response.json()["detail"]


def test_keys_are_unique_and_prefixed(db_session: Session, tenant: Tenant) -> None:
    raws = {workspaces.create_api_key(db_session, tenant.id, f"k{i}")[1] for i in range(20)}
    assert len(raws) == 20
    assert all(r.startswith("bsk_") and len(r) > 40 for r in raws)
