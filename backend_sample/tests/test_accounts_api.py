"""Chart of accounts over HTTP."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend_sample.models import Account
from backend_sample.tests.factories import Tenant, make_entry


def _create(api: TestClient, **fields: object) -> dict[str, object]:
    payload = {"code": "6000", "name": "Travel", "type": "expense"} | fields
    response = api.post("/accounts", json=payload)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["asset", "liability", "equity", "income", "expense"])
def test_create_each_type(api: TestClient, db_session: Session, kind: str) -> None:
    body = _create(api, code=f"9{kind[:3]}", name=f"New {kind}", type=kind)
    assert body["type"] == kind
    assert body["is_archived"] is False
    stored = db_session.get(Account, body["id"])
    assert stored is not None
    assert (stored.code, stored.type) == (f"9{kind[:3]}", kind)


@pytest.mark.parametrize(
    "payload",
    [
        {"code": "", "name": "x", "type": "asset"},
        {"code": "a b", "name": "x", "type": "asset"},
        {"code": "x" * 21, "name": "x", "type": "asset"},
        {"code": "1", "name": "", "type": "asset"},
        {"code": "1", "name": "x", "type": "revenue"},
        {"code": "1", "name": "x"},
        {"name": "x", "type": "asset"},
    ],
)
def test_create_validation(api: TestClient, payload: dict[str, str]) -> None:
    response = api.post("/accounts", json=payload)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


def test_duplicate_code_is_conflict(api: TestClient, tenant: Tenant) -> None:
    response = api.post("/accounts", json={"code": "1000", "name": "Dup", "type": "asset"})
    assert response.status_code == 409
    assert "1000" in response.json()["detail"]


def test_same_code_allowed_in_other_workspace(
    api: TestClient, other_tenant: Tenant, db_session: Session
) -> None:
    body = _create(api, code="7777")
    other = db_session.scalars(
        select(Account).where(Account.workspace_id == other_tenant.id, Account.code == "1000")
    ).one()
    assert other.id != body["id"]


def test_list_is_sorted_by_code(api: TestClient, tenant: Tenant) -> None:
    codes = [a["code"] for a in api.get("/accounts").json()]
    assert codes == sorted(codes)
    assert len(codes) == len(tenant.accounts)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("asset", ["1000", "1010", "1100", "1500"]),
        ("liability", ["2000", "2500"]),
        ("equity", ["3000"]),
        ("income", ["4000", "4100"]),
        ("expense", ["5000", "5100", "5200"]),
    ],
)
def test_list_filter_by_type(api: TestClient, kind: str, expected: list[str]) -> None:
    assert [a["code"] for a in api.get("/accounts", params={"type": kind}).json()] == expected


def test_list_rejects_unknown_type(api: TestClient) -> None:
    assert api.get("/accounts", params={"type": "bogus"}).status_code == 422


def test_archived_hidden_unless_requested(api: TestClient, tenant: Tenant) -> None:
    api.post(f"/accounts/{tenant['equipment'].id}/archive")
    codes = [a["code"] for a in api.get("/accounts").json()]
    assert "1500" not in codes
    all_codes = [a["code"] for a in api.get("/accounts", params={"include_archived": True}).json()]
    assert "1500" in all_codes


def test_get_account(api: TestClient, tenant: Tenant) -> None:
    body = api.get(f"/accounts/{tenant['bank'].id}").json()
    assert body["code"] == "1010"
    assert body["is_cash"] is True


def test_get_missing_account(api: TestClient) -> None:
    response = api.get("/accounts/999999")
    assert response.status_code == 404
    assert response.json()["detail"] == "Account 999999 not found"


def test_rename(api: TestClient, tenant: Tenant, db_session: Session) -> None:
    response = api.patch(f"/accounts/{tenant['rent'].id}", json={"name": "Office rent"})
    assert response.json()["name"] == "Office rent"
    db_session.expire_all()
    assert db_session.get(Account, tenant["rent"].id).name == "Office rent"  # type: ignore[union-attr]


def test_set_parent_and_clear_it(api: TestClient, tenant: Tenant) -> None:
    child = _create(api, code="5001", name="Warehouse rent")
    assert (
        api.patch(f"/accounts/{child['id']}", json={"parent_id": tenant["rent"].id}).json()[
            "parent_id"
        ]
        == tenant["rent"].id
    )
    cleared = api.patch(f"/accounts/{child['id']}", json={"parent_id": None}).json()
    assert cleared["parent_id"] is None


def test_patch_without_parent_keeps_parent(api: TestClient, tenant: Tenant) -> None:
    child = _create(api, code="5001", name="Warehouse rent", parent_id=tenant["rent"].id)
    body = api.patch(f"/accounts/{child['id']}", json={"name": "Depot rent"}).json()
    assert body["parent_id"] == tenant["rent"].id


def test_parent_of_other_type_rejected(api: TestClient, tenant: Tenant) -> None:
    response = api.post(
        "/accounts",
        json={"code": "5001", "name": "x", "type": "expense", "parent_id": tenant["bank"].id},
    )
    assert response.status_code == 422
    assert "type asset" in response.json()["detail"]


def test_flag_cash(api: TestClient, tenant: Tenant) -> None:
    assert api.patch(f"/accounts/{tenant['receivables'].id}", json={"is_cash": True}).json()[
        "is_cash"
    ]


def test_flag_cash_on_expense_rejected(api: TestClient, tenant: Tenant) -> None:
    response = api.patch(f"/accounts/{tenant['rent'].id}", json={"is_cash": True})
    assert response.status_code == 422
    assert api.get(f"/accounts/{tenant['rent'].id}").json()["is_cash"] is False


def test_archive_and_unarchive(api: TestClient, tenant: Tenant) -> None:
    archived = api.post(f"/accounts/{tenant['loan'].id}/archive").json()
    assert archived["is_archived"] is True
    restored = api.post(f"/accounts/{tenant['loan'].id}/unarchive").json()
    assert restored["is_archived"] is False


def test_archived_account_rejects_postings(api: TestClient, tenant: Tenant) -> None:
    api.post(f"/accounts/{tenant['loan'].id}/archive")
    response = api.post(
        "/journal-entries",
        json={
            "entry_date": "2024-01-05",
            "description": "Loan drawdown",
            "lines": [
                {"account_id": tenant["bank"].id, "debit": "100.00"},
                {"account_id": tenant["loan"].id, "credit": "100.00"},
            ],
            "post": True,
        },
    )
    assert response.status_code == 422
    assert "archived" in response.json()["detail"]
    assert "2500" in response.json()["detail"]


def test_archived_account_keeps_history_in_ledger(
    api: TestClient, db_session: Session, tenant: Tenant
) -> None:
    make_entry(db_session, tenant, "2024-01-05", [("bank", 100, 0), ("loan", 0, 100)])
    api.post(f"/accounts/{tenant['loan'].id}/archive")
    ledger = api.get(f"/accounts/{tenant['loan'].id}/ledger", params={"date_to": "2024-12-31"})
    assert ledger.json()["closing_balance"] == "100.00"


def test_archive_parent_with_live_child_refused(api: TestClient, tenant: Tenant) -> None:
    _create(api, code="5001", name="Sub rent", parent_id=tenant["rent"].id)
    response = api.post(f"/accounts/{tenant['rent'].id}/archive")
    assert response.status_code == 422
    assert response.json()["detail"] == "archive the child accounts first"


def test_archive_parent_after_child(api: TestClient, tenant: Tenant) -> None:
    child = _create(api, code="5001", name="Sub rent", parent_id=tenant["rent"].id)
    api.post(f"/accounts/{child['id']}/archive")
    assert api.post(f"/accounts/{tenant['rent'].id}/archive").json()["is_archived"] is True
