"""Reconciliation over HTTP: rules CRUD, auto-match, manual match/unmatch, report."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend_sample.tests.factories import Tenant, csv_text, import_csv, transfer


@pytest.fixture
def setup(db_session: Session, tenant: Tenant):  # type: ignore[no-untyped-def]
    entry = transfer(db_session, tenant, "2024-03-01", "rent", "bank", "800")
    import_csv(
        db_session, tenant, csv_text("2024-03-03,LANDLORD,-800.00,,", "2024-03-04,Fee,-1.00,,")
    )
    return entry


def _statement(api: TestClient) -> list[dict[str, object]]:
    return api.get("/statement-lines").json()  # type: ignore[no-any-return]


def test_rule_crud(api: TestClient, tenant: Tenant) -> None:
    created = api.post(
        "/reconciliation-rules",
        json={
            "name": "Rent",
            "pattern": "LANDLORD",
            "account_id": tenant["rent"].id,
            "amount_tolerance": "0.50",
            "date_window_days": 3,
        },
    )
    assert created.status_code == 201
    rule = created.json()
    assert (rule["amount_tolerance"], rule["date_window_days"], rule["is_active"]) == (
        "0.50",
        3,
        True,
    )
    assert [r["id"] for r in api.get("/reconciliation-rules").json()] == [rule["id"]]
    patched = api.patch(f"/reconciliation-rules/{rule['id']}", json={"is_active": False})
    assert patched.json()["is_active"] is False
    assert api.delete(f"/reconciliation-rules/{rule['id']}").status_code == 204
    assert api.get("/reconciliation-rules").json() == []


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "x", "pattern": "", "account_id": 1},
        {"name": "x", "pattern": "p", "account_id": 1, "date_window_days": -1},
        {"name": "x", "pattern": "p", "account_id": 1, "date_window_days": 400},
        {"name": "x", "pattern": "p", "account_id": 1, "amount_tolerance": "-0.01"},
        {"pattern": "p", "account_id": 1},
    ],
)
def test_rule_validation(api: TestClient, payload: dict[str, object]) -> None:
    assert api.post("/reconciliation-rules", json=payload).status_code == 422


def test_auto_reconcile_with_rule(api: TestClient, tenant: Tenant, setup) -> None:  # type: ignore[no-untyped-def]
    api.post(
        "/reconciliation-rules",
        json={
            "name": "Rent",
            "pattern": "landlord",
            "account_id": tenant["rent"].id,
            "date_window_days": 3,
        },
    )
    result = api.post(f"/accounts/{tenant['bank'].id}/reconcile").json()
    assert result == {"exact": 0, "rule": 1}
    matched = [ln for ln in _statement(api) if ln["matched_line_id"] is not None]
    assert [(m["description"], m["match_method"]) for m in matched] == [("LANDLORD", "rule")]


def test_report_endpoint(api: TestClient, tenant: Tenant, setup) -> None:  # type: ignore[no-untyped-def]
    report = api.get(f"/accounts/{tenant['bank'].id}/reconciliation").json()
    assert report["matched"] == 0
    assert [s["amount"] for s in report["unmatched_statement_lines"]] == ["-800.00", "-1.00"]
    assert [j["amount"] for j in report["unmatched_journal_lines"]] == ["-800.00"]
    assert report["unmatched_statement_total"] == "-801.00"
    assert report["unmatched_journal_total"] == "-800.00"


def test_manual_match_and_unmatch(api: TestClient, tenant: Tenant, setup) -> None:  # type: ignore[no-untyped-def]
    line = _statement(api)[0]
    bank_line = setup.lines[1].id
    matched = api.post(f"/statement-lines/{line['id']}/match", json={"journal_line_id": bank_line})
    assert matched.status_code == 200
    assert (matched.json()["matched_line_id"], matched.json()["match_method"]) == (
        bank_line,
        "manual",
    )
    report = api.get(f"/accounts/{tenant['bank'].id}/reconciliation").json()
    assert report["matched"] == 1
    assert report["unmatched_journal_lines"] == []
    unmatched = api.delete(f"/statement-lines/{line['id']}/match")
    assert unmatched.json()["matched_line_id"] is None
    assert api.get(f"/accounts/{tenant['bank'].id}/reconciliation").json()["matched"] == 0


def test_match_twice_conflict(api: TestClient, setup) -> None:  # type: ignore[no-untyped-def]
    line = _statement(api)[0]
    api.post(f"/statement-lines/{line['id']}/match", json={"journal_line_id": setup.lines[1].id})
    again = api.post(
        f"/statement-lines/{line['id']}/match", json={"journal_line_id": setup.lines[1].id}
    )
    assert again.status_code == 409


def test_journal_line_cannot_match_two_statement_lines(
    api: TestClient,
    db_session: Session,
    tenant: Tenant,
    setup,  # type: ignore[no-untyped-def]
) -> None:
    import_csv(db_session, tenant, csv_text("2024-03-05,LANDLORD again,-800.00,,"))
    lines = [ln for ln in _statement(api) if ln["amount"] == "-800.00"]
    api.post(
        f"/statement-lines/{lines[0]['id']}/match", json={"journal_line_id": setup.lines[1].id}
    )
    second = api.post(
        f"/statement-lines/{lines[1]['id']}/match", json={"journal_line_id": setup.lines[1].id}
    )
    assert second.status_code == 409
    assert str(lines[0]["id"]) in second.json()["detail"]


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("other_account_line", "different account"),
        ("fee_line", "amounts differ"),
        ("missing", "not found"),
    ],
)
def test_manual_match_validation(
    api: TestClient,
    db_session: Session,
    tenant: Tenant,
    setup,
    which: str,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    statement = _statement(api)
    line = statement[1] if which == "fee_line" else statement[0]
    journal_line = {
        "other_account_line": setup.lines[0].id,
        "fee_line": setup.lines[1].id,
        "missing": 999999,
    }[which]
    response = api.post(
        f"/statement-lines/{line['id']}/match", json={"journal_line_id": journal_line}
    )
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_draft_lines_cannot_be_matched(
    api: TestClient, db_session: Session, tenant: Tenant, setup
) -> None:  # type: ignore[no-untyped-def]
    from backend_sample.tests.factories import make_entry

    draft = make_entry(
        db_session, tenant, "2024-03-04", [("bank_fees", 1, 0), ("bank", 0, 1)], post=False
    )
    fee = _statement(api)[1]
    response = api.post(
        f"/statement-lines/{fee['id']}/match", json={"journal_line_id": draft.lines[1].id}
    )
    assert response.status_code == 422
    assert "posted" in response.json()["detail"]


def test_unmatch_unmatched_is_conflict(api: TestClient, setup) -> None:  # type: ignore[no-untyped-def]
    line = _statement(api)[0]
    assert api.delete(f"/statement-lines/{line['id']}/match").status_code == 409


def test_matched_entry_cannot_be_voided(api: TestClient, setup) -> None:  # type: ignore[no-untyped-def]
    line = _statement(api)[0]
    api.post(f"/statement-lines/{line['id']}/match", json={"journal_line_id": setup.lines[1].id})
    response = api.post(f"/journal-entries/{setup.id}/void")
    assert response.status_code == 409
    assert "unmatch" in response.json()["detail"]


def test_other_workspace_cannot_touch_lines(
    client: TestClient,
    other_tenant: Tenant,
    tenant: Tenant,
    setup,  # type: ignore[no-untyped-def]
) -> None:
    client.headers["X-API-Key"] = tenant.key
    line = _statement(client)[0]
    client.headers["X-API-Key"] = other_tenant.key
    assert client.delete(f"/statement-lines/{line['id']}/match").status_code == 404
    assert (
        client.post(
            f"/statement-lines/{line['id']}/match", json={"journal_line_id": setup.lines[1].id}
        ).status_code
        == 404
    )
    assert client.post(f"/accounts/{tenant['bank'].id}/reconcile").status_code == 404
    assert client.get(f"/accounts/{tenant['bank'].id}/reconciliation").status_code == 404
    assert client.get("/statement-lines").json() == []
