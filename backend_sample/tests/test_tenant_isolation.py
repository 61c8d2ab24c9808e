"""One workspace never sees or touches another's data: 404, never 403."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend_sample.services import reconcile
from backend_sample.tests.factories import Tenant, csv_text, import_csv, make_entry, transfer


@pytest.fixture
def victim(db_session: Session, other_tenant: Tenant) -> dict[str, int]:
    posted = transfer(db_session, other_tenant, "2024-01-05", "bank", "sales", "100")
    draft = make_entry(
        db_session, other_tenant, "2024-01-06", [("rent", 5, 0), ("bank", 0, 5)], post=False
    )
    import_csv(db_session, other_tenant, csv_text("2024-01-05,Sale,100.00,,"))
    rule = reconcile.create_rule(db_session, other_tenant.id, "r", "x", other_tenant["rent"].id)
    from backend_sample.services.imports import list_statement_lines

    line = list_statement_lines(db_session, other_tenant.id)[0]
    return {
        "account": other_tenant["bank"].id,
        "posted": posted.id,
        "draft": draft.id,
        "rule": rule.id,
        "line": line.id,
        "journal_line": posted.lines[0].id,
    }


CASES: list[tuple[str, str, Any]] = [
    ("GET", "/accounts/{account}", None),
    ("PATCH", "/accounts/{account}", {"name": "pwned"}),
    ("POST", "/accounts/{account}/archive", None),
    ("POST", "/accounts/{account}/unarchive", None),
    ("GET", "/accounts/{account}/ledger?date_to=2024-12-31", None),
    ("GET", "/journal-entries/{posted}", None),
    ("GET", "/journal-entries/{draft}", None),
    ("PATCH", "/journal-entries/{draft}", {"description": "pwned"}),
    ("DELETE", "/journal-entries/{draft}", None),
    ("POST", "/journal-entries/{draft}/post", None),
    ("POST", "/journal-entries/{posted}/void", None),
    ("POST", "/journal-entries/{posted}/reverse", None),
    ("POST", "/accounts/{account}/reconcile", None),
    ("GET", "/accounts/{account}/reconciliation", None),
    ("PATCH", "/reconciliation-rules/{rule}", {"is_active": False}),
    ("DELETE", "/reconciliation-rules/{rule}", None),
    ("DELETE", "/statement-lines/{line}/match", None),
    ("POST", "/statement-lines/{line}/match", {"journal_line_id": 1}),
]


@pytest.mark.parametrize(("method", "template", "body"), CASES)
def test_foreign_ids_are_404(
    api: TestClient,
    victim: dict[str, int],
    method: str,
    template: str,
    body: Any,
) -> None:
    response = api.request(method, template.format(**victim), json=body)
    assert response.status_code == 404, response.text
    assert "not found" in response.json()["detail"]


def test_victim_data_unchanged_after_attempts(
    api: TestClient, client: TestClient, victim: dict[str, int], other_tenant: Tenant
) -> None:
    for method, template, body in CASES:
        api.request(method, template.format(**victim), json=body)
    own = {"X-API-Key": other_tenant.key}
    assert (
        client.get(f"/journal-entries/{victim['draft']}", headers=own).json()["status"] == "draft"
    )
    assert (
        client.get(f"/journal-entries/{victim['posted']}", headers=own).json()["status"] == "posted"
    )
    account = client.get(f"/accounts/{victim['account']}", headers=own).json()
    assert (account["name"], account["is_archived"]) == ("Operating bank account", False)
    assert client.get("/reconciliation-rules", headers=own).json()[0]["is_active"] is True


@pytest.mark.parametrize(
    "path",
    [
        "/accounts",
        "/journal-entries",
        "/statement-imports",
        "/statement-lines",
        "/reconciliation-rules",
        "/fx/rates",
    ],
)
def test_lists_only_show_own_rows(
    api: TestClient, victim: dict[str, int], tenant: Tenant, path: str
) -> None:
    body = api.get(path).json()
    ids = {row["id"] for row in body}
    assert not ids & set(victim.values()) or path == "/accounts"
    if path == "/accounts":
        assert victim["account"] not in ids
        assert len(body) == len(tenant.accounts)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/reports/trial-balance", {"date_to": "2024-12-31"}),
        ("/reports/income-statement", {"date_to": "2024-12-31"}),
    ],
)
def test_reports_ignore_other_workspace(
    api: TestClient, victim: dict[str, int], path: str, params: dict[str, str]
) -> None:
    body = api.get(path, params=params).json()
    assert body.get("accounts", []) == []
    assert body.get("income", []) == []


def test_journal_line_of_other_workspace_cannot_be_matched(
    api: TestClient, db_session: Session, tenant: Tenant, victim: dict[str, int]
) -> None:
    import_csv(db_session, tenant, csv_text("2024-01-05,Sale,100.00,,"))
    own_line = api.get("/statement-lines").json()[0]
    response = api.post(
        f"/statement-lines/{own_line['id']}/match", json={"journal_line_id": victim["journal_line"]}
    )
    assert response.status_code == 422
    assert "not found" in response.json()["detail"]


def test_rule_with_foreign_counter_account_is_404(api: TestClient, victim: dict[str, int]) -> None:
    response = api.post(
        "/reconciliation-rules", json={"name": "x", "pattern": "x", "account_id": victim["account"]}
    )
    assert response.status_code == 404
