"""Journal entries over HTTP: drafts, posting, editing rules, voiding."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend_sample.models import JournalEntry, JournalLine
from backend_sample.tests.factories import Tenant, make_entry


def _entry(tenant: Tenant, amount: str = "250.00", **extra: Any) -> dict[str, Any]:
    return {
        "entry_date": "2024-03-15",
        "description": "Invoice 42 paid",
        "lines": [
            {"account_id": tenant["bank"].id, "debit": amount},
            {"account_id": tenant["receivables"].id, "credit": amount},
        ],
    } | extra


def test_create_draft(api: TestClient, tenant: Tenant, db_session: Session) -> None:
    response = api.post("/journal-entries", json=_entry(tenant))
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "draft"
    assert body["currency"] == "USD"
    assert body["posted_at"] is None
    assert [(ln["line_no"], ln["debit"], ln["credit"]) for ln in body["lines"]] == [
        (1, "250.00", "0.00"),
        (2, "0.00", "250.00"),
    ]
    assert db_session.get(JournalEntry, body["id"]) is not None


def test_create_and_post(api: TestClient, tenant: Tenant) -> None:
    body = api.post("/journal-entries", json=_entry(tenant, post=True)).json()
    assert body["status"] == "posted"
    assert body["posted_at"] is not None


@pytest.mark.parametrize("amount", ["0.01", "1", "99.99", "1234567.89", "9999999999999999.99"])
def test_amounts_round_trip_exactly(api: TestClient, tenant: Tenant, amount: str) -> None:
    body = api.post("/journal-entries", json=_entry(tenant, amount, post=True)).json()
    expected = f"{float(amount):.2f}" if len(amount) < 15 else amount
    assert body["lines"][0]["debit"] == expected
    assert api.get(f"/journal-entries/{body['id']}").json()["lines"][1]["credit"] == expected


def test_numeric_json_amounts_accepted(api: TestClient, tenant: Tenant) -> None:
    payload = _entry(tenant, post=True)
    payload["lines"][0]["debit"] = 12.5
    payload["lines"][1]["credit"] = 12.5
    body = api.post("/journal-entries", json=payload).json()
    assert body["lines"][0]["debit"] == "12.50"


@pytest.mark.parametrize("bad", ["0.001", "-5.00", "abc", "1e400"])
def test_invalid_amounts_rejected(api: TestClient, tenant: Tenant, bad: str) -> None:
    response = api.post("/journal-entries", json=_entry(tenant, bad))
    assert response.status_code == 422


def test_unbalanced_post_rejected_with_totals(
    api: TestClient, tenant: Tenant, db_session: Session
) -> None:
    payload = _entry(tenant, post=True)
    payload["lines"][1]["credit"] = "200.00"
    response = api.post("/journal-entries", json=payload)
    assert response.status_code == 422
    assert response.json()["errors"] == {"debit": "250.00", "credit": "200.00"}
    assert db_session.scalars(select(JournalEntry)).all() == []


def test_unbalanced_draft_allowed_but_not_postable(api: TestClient, tenant: Tenant) -> None:
    payload = _entry(tenant)
    payload["lines"][1]["credit"] = "200.00"
    draft = api.post("/journal-entries", json=payload).json()
    response = api.post(f"/journal-entries/{draft['id']}/post")
    assert response.status_code == 422
    assert "not balanced" in response.json()["detail"]
    assert api.get(f"/journal-entries/{draft['id']}").json()["status"] == "draft"


def test_single_line_cannot_be_posted(api: TestClient, tenant: Tenant) -> None:
    payload = _entry(tenant, post=True)
    payload["lines"] = payload["lines"][:1]
    response = api.post("/journal-entries", json=payload)
    assert response.status_code == 422
    assert response.json()["detail"] == "an entry needs at least two lines"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"debit": "10.00", "credit": "10.00"}, "exactly one of debit or credit"),
        ({}, "exactly one of debit or credit"),
        ({"debit": "0", "credit": "0"}, "exactly one of debit or credit"),
    ],
)
def test_line_must_have_one_side(
    api: TestClient, tenant: Tenant, line: dict[str, str], message: str
) -> None:
    payload = _entry(tenant)
    payload["lines"].append({"account_id": tenant["cash"].id, **line})
    response = api.post("/journal-entries", json=payload)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert "line 3" in response.json()["detail"]


def test_empty_lines_rejected(api: TestClient, tenant: Tenant) -> None:
    assert api.post("/journal-entries", json=_entry(tenant, lines=[])).status_code == 422


def test_unknown_account_rejected(api: TestClient, tenant: Tenant) -> None:
    payload = _entry(tenant)
    payload["lines"][0]["account_id"] = 424242
    response = api.post("/journal-entries", json=payload)
    assert response.status_code == 422
    assert "424242" in response.json()["detail"]


def test_foreign_account_rejected(api: TestClient, tenant: Tenant, other_tenant: Tenant) -> None:
    payload = _entry(tenant)
    payload["lines"][0]["account_id"] = other_tenant["bank"].id
    response = api.post("/journal-entries", json=payload)
    assert response.status_code == 422
    assert str(other_tenant["bank"].id) in response.json()["detail"]


@pytest.mark.parametrize("currency", ["EUR", "GBP", "CHF"])
def test_entry_in_foreign_currency(api: TestClient, tenant: Tenant, currency: str) -> None:
    body = api.post("/journal-entries", json=_entry(tenant, currency=currency)).json()
    assert body["currency"] == currency


def test_unknown_currency_rejected(api: TestClient, tenant: Tenant) -> None:
    response = api.post("/journal-entries", json=_entry(tenant, currency="ZZZ"))
    assert response.status_code == 422
    assert "ZZZ" in response.json()["detail"]


def test_get_entry(api: TestClient, tenant: Tenant) -> None:
    created = api.post("/journal-entries", json=_entry(tenant, reference="INV-42")).json()
    fetched = api.get(f"/journal-entries/{created['id']}").json()
    assert fetched == created


def test_get_missing_entry(api: TestClient) -> None:
    response = api.get("/journal-entries/987654")
    assert response.status_code == 404


def test_list_filters(api: TestClient, tenant: Tenant, db_session: Session) -> None:
    make_entry(db_session, tenant, "2024-01-10", [("bank", 10, 0), ("sales", 0, 10)])
    make_entry(db_session, tenant, "2024-02-10", [("rent", 20, 0), ("bank", 0, 20)], post=False)
    make_entry(db_session, tenant, "2024-03-10", [("cash", 30, 0), ("sales", 0, 30)])
    assert len(api.get("/journal-entries").json()) == 3
    posted = api.get("/journal-entries", params={"status": "posted"}).json()
    assert [e["entry_date"] for e in posted] == ["2024-01-10", "2024-03-10"]
    drafts = api.get("/journal-entries", params={"status": "draft"}).json()
    assert [e["entry_date"] for e in drafts] == ["2024-02-10"]
    window = api.get(
        "/journal-entries", params={"date_from": "2024-02-01", "date_to": "2024-02-29"}
    ).json()
    assert [e["entry_date"] for e in window] == ["2024-02-10"]
    touching_cash = api.get("/journal-entries", params={"account_id": tenant["cash"].id}).json()
    assert [e["entry_date"] for e in touching_cash] == ["2024-03-10"]


def test_list_rejects_unknown_status(api: TestClient) -> None:
    assert api.get("/journal-entries", params={"status": "open"}).status_code == 422


def test_patch_draft_replaces_lines(api: TestClient, tenant: Tenant, db_session: Session) -> None:
    draft = api.post("/journal-entries", json=_entry(tenant)).json()
    response = api.patch(
        f"/journal-entries/{draft['id']}",
        json={
            "description": "Corrected",
            "entry_date": "2024-03-16",
            "reference": "R-1",
            "lines": [
                {"account_id": tenant["cash"].id, "debit": "5.00"},
                {"account_id": tenant["sales"].id, "credit": "3.00"},
                {"account_id": tenant["interest_income"].id, "credit": "2.00"},
            ],
        },
    )
    body = response.json()
    assert response.status_code == 200
    assert (body["description"], body["entry_date"], body["reference"]) == (
        "Corrected",
        "2024-03-16",
        "R-1",
    )
    assert [ln["line_no"] for ln in body["lines"]] == [1, 2, 3]
    count = db_session.scalars(select(JournalLine).where(JournalLine.entry_id == draft["id"])).all()
    assert len(count) == 3


def test_patch_draft_without_lines_keeps_them(api: TestClient, tenant: Tenant) -> None:
    draft = api.post("/journal-entries", json=_entry(tenant)).json()
    body = api.patch(f"/journal-entries/{draft['id']}", json={"description": "Only text"}).json()
    assert body["lines"] == draft["lines"]


def test_patch_posted_entry_is_conflict(api: TestClient, tenant: Tenant) -> None:
    posted = api.post("/journal-entries", json=_entry(tenant, post=True)).json()
    response = api.patch(f"/journal-entries/{posted['id']}", json={"description": "Sneaky"})
    assert response.status_code == 409
    assert "immutable" in response.json()["detail"]
    assert api.get(f"/journal-entries/{posted['id']}").json()["description"] == "Invoice 42 paid"


def test_delete_draft(api: TestClient, tenant: Tenant, db_session: Session) -> None:
    draft = api.post("/journal-entries", json=_entry(tenant)).json()
    assert api.delete(f"/journal-entries/{draft['id']}").status_code == 204
    assert api.get(f"/journal-entries/{draft['id']}").status_code == 404
    assert (
        db_session.scalars(select(JournalLine).where(JournalLine.entry_id == draft["id"])).all()
        == []
    )


def test_delete_posted_is_conflict(api: TestClient, tenant: Tenant) -> None:
    posted = api.post("/journal-entries", json=_entry(tenant, post=True)).json()
    assert api.delete(f"/journal-entries/{posted['id']}").status_code == 409
    assert api.get(f"/journal-entries/{posted['id']}").status_code == 200


def test_post_twice_is_conflict(api: TestClient, tenant: Tenant) -> None:
    draft = api.post("/journal-entries", json=_entry(tenant)).json()
    assert api.post(f"/journal-entries/{draft['id']}/post").json()["status"] == "posted"
    again = api.post(f"/journal-entries/{draft['id']}/post")
    assert again.status_code == 409


def test_post_draft_whose_account_was_archived(api: TestClient, tenant: Tenant) -> None:
    draft = api.post("/journal-entries", json=_entry(tenant)).json()
    api.post(f"/accounts/{tenant['receivables'].id}/archive")
    response = api.post(f"/journal-entries/{draft['id']}/post")
    assert response.status_code == 422
    assert "1100" in response.json()["detail"]


@pytest.mark.parametrize("post", [True, False])
def test_void(api: TestClient, tenant: Tenant, post: bool) -> None:
    entry = api.post("/journal-entries", json=_entry(tenant, post=post)).json()
    voided = api.post(f"/journal-entries/{entry['id']}/void").json()
    assert voided["status"] == "void"
    assert voided["voided_at"] is not None
    assert voided["lines"] == entry["lines"]


def test_void_twice_is_conflict(api: TestClient, tenant: Tenant) -> None:
    entry = api.post("/journal-entries", json=_entry(tenant, post=True)).json()
    api.post(f"/journal-entries/{entry['id']}/void")
    response = api.post(f"/journal-entries/{entry['id']}/void")
    assert response.status_code == 409
    assert response.json()["detail"] == "entry is already void"


def test_void_entry_cannot_be_posted(api: TestClient, tenant: Tenant) -> None:
    entry = api.post("/journal-entries", json=_entry(tenant)).json()
    api.post(f"/journal-entries/{entry['id']}/void")
    assert api.post(f"/journal-entries/{entry['id']}/post").status_code == 409


def test_voided_entry_leaves_trial_balance(api: TestClient, tenant: Tenant) -> None:
    entry = api.post("/journal-entries", json=_entry(tenant, post=True)).json()
    before = api.get("/reports/trial-balance", params={"date_to": "2024-12-31"}).json()
    assert before["total_debit"] == "250.00"
    api.post(f"/journal-entries/{entry['id']}/void")
    after = api.get("/reports/trial-balance", params={"date_to": "2024-12-31"}).json()
    assert after["accounts"] == []
    assert after["total_debit"] == "0.00"
