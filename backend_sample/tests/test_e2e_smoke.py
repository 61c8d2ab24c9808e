"""Smoke tests against a live server (``--e2e-base-url`` or ``BACKEND_SAMPLE_E2E_URL``).

They authenticate like a real operator: ``POST /workspaces`` with the admin token
(taken from env ``ADMIN_TOKEN``, the same variable the server reads) creates a
throw-away workspace whose API key is used for the rest of the module, so runs
never see each other's data and can target a shared staging server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def http(e2e_base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=e2e_base_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def key(http: httpx.Client) -> str:
    token = os.environ.get("ADMIN_TOKEN")
    if not token:
        pytest.skip("ADMIN_TOKEN not set; cannot bootstrap a workspace on the live server")
    response = http.post(
        "/workspaces",
        json={"name": f"e2e-{uuid.uuid4().hex[:8]}"},
        headers={"X-Admin-Token": token},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["api_key"]["key"])


@pytest.fixture(scope="module")
def authed(http: httpx.Client, key: str) -> httpx.Client:
    http.headers["X-API-Key"] = key
    return http


@pytest.fixture(scope="module")
def chart(authed: httpx.Client) -> dict[str, int]:
    ids = {}
    for code, name, kind in [("1010", "Bank", "asset"), ("4000", "Sales", "income")]:
        response = authed.post("/accounts", json={"code": code, "name": name, "type": kind})
        assert response.status_code == 201, response.text
        ids[code] = response.json()["id"]
    return ids


def test_healthz_reports_ok(e2e_base_url: str) -> None:
    response = httpx.get(f"{e2e_base_url}/healthz", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["commit"]


def test_unauthenticated_request_is_rejected(e2e_base_url: str) -> None:
    response = httpx.get(f"{e2e_base_url}/accounts", timeout=10)
    assert response.status_code == 401


def test_workspace_is_reachable_with_new_key(authed: httpx.Client) -> None:
    body = authed.get("/workspace").json()
    assert body["name"].startswith("e2e-")
    assert body["reporting_currency"] == "USD"


def test_post_balanced_entry(authed: httpx.Client, chart: dict[str, int]) -> None:
    response = authed.post(
        "/journal-entries",
        json={
            "entry_date": "2024-06-01",
            "description": "E2E sale",
            "post": True,
            "lines": [
                {"account_id": chart["1010"], "debit": "125.50"},
                {"account_id": chart["4000"], "credit": "125.50"},
            ],
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "posted"


def test_unbalanced_entry_is_refused(authed: httpx.Client, chart: dict[str, int]) -> None:
    response = authed.post(
        "/journal-entries",
        json={
            "entry_date": "2024-06-01",
            "description": "E2E broken",
            "post": True,
            "lines": [
                {"account_id": chart["1010"], "debit": "1.00"},
                {"account_id": chart["4000"], "credit": "2.00"},
            ],
        },
    )
    assert response.status_code == 422


def test_trial_balance_reflects_entry(authed: httpx.Client, chart: dict[str, int]) -> None:
    authed.post(
        "/journal-entries",
        json={
            "entry_date": "2024-06-02",
            "description": "E2E second sale",
            "post": True,
            "lines": [
                {"account_id": chart["1010"], "debit": "10.00"},
                {"account_id": chart["4000"], "credit": "10.00"},
            ],
        },
    )
    body = authed.get("/reports/trial-balance", params={"date_to": "2024-06-30"}).json()
    assert body["balanced"] is True
    assert body["total_debit"] == body["total_credit"]
    assert {a["code"] for a in body["accounts"]} == {"1010", "4000"}


def test_statement_import_round_trip(authed: httpx.Client, chart: dict[str, int]) -> None:
    data = "Date,Description,Amount,Reference\n2024-06-01,E2E sale,125.50,E2E-1\n"
    first = authed.post(
        f"/accounts/{chart['1010']}/statement-imports",
        content=data,
        headers={"Content-Type": "text/csv"},
    )
    assert first.status_code == 201, first.text
    second = authed.post(
        f"/accounts/{chart['1010']}/statement-imports",
        content=data,
        headers={"Content-Type": "text/csv"},
    ).json()
    assert second["rows_duplicate"] == 1
