"""Trial balance: per-account totals from posted entries, computed in SQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend_sample.errors import DomainError
from backend_sample.services import journal, reports
from backend_sample.tests.factories import Tenant, day, make_entry, transfer


@pytest.fixture
def books(db_session: Session, tenant: Tenant) -> Tenant:
    transfer(db_session, tenant, "2024-01-02", "bank", "capital", "10000")
    transfer(db_session, tenant, "2024-01-15", "receivables", "sales", "2500")
    transfer(db_session, tenant, "2024-01-31", "rent", "bank", "1200")
    transfer(db_session, tenant, "2024-02-10", "bank", "receivables", "2000")
    transfer(db_session, tenant, "2024-02-28", "salaries", "bank", "3000")
    make_entry(db_session, tenant, "2024-02-15", [("rent", 999, 0), ("bank", 0, 999)], post=False)
    return tenant


def _rows(tb: dict[str, object]) -> dict[str, tuple[Decimal, Decimal]]:
    return {r["code"]: (r["net_debit"], r["net_credit"]) for r in tb["accounts"]}  # type: ignore[attr-defined]


def test_full_period(db_session: Session, books: Tenant) -> None:
    tb = reports.trial_balance(db_session, books.workspace, None, day("2024-12-31"))
    assert _rows(tb) == {
        "1010": (Decimal("7800.00"), Decimal("0.00")),
        "1100": (Decimal("500.00"), Decimal("0.00")),
        "3000": (Decimal("0.00"), Decimal("10000.00")),
        "4000": (Decimal("0.00"), Decimal("2500.00")),
        "5000": (Decimal("1200.00"), Decimal("0.00")),
        "5100": (Decimal("3000.00"), Decimal("0.00")),
    }
    assert tb["total_debit"] == tb["total_credit"] == Decimal("18700.00")
    assert tb["balanced"] is True


@pytest.mark.parametrize(
    ("date_from", "date_to", "expected_total"),
    [
        ("2024-01-01", "2024-01-31", "13700.00"),
        ("2024-02-01", "2024-02-29", "5000.00"),
        ("2024-01-15", "2024-01-15", "2500.00"),
        ("2024-03-01", "2024-03-31", "0.00"),
        (None, "2024-01-01", "0.00"),
        (None, "2024-01-02", "10000.00"),
    ],
)
def test_periods(
    db_session: Session, books: Tenant, date_from: str | None, date_to: str, expected_total: str
) -> None:
    tb = reports.trial_balance(
        db_session, books.workspace, day(date_from) if date_from else None, day(date_to)
    )
    assert tb["total_debit"] == Decimal(expected_total)
    assert tb["balanced"] is True


def test_accounts_sorted_by_code_with_gross_columns(db_session: Session, books: Tenant) -> None:
    tb = reports.trial_balance(db_session, books.workspace, None, day("2024-12-31"))
    accounts = tb["accounts"]
    assert [a["code"] for a in accounts] == sorted(a["code"] for a in accounts)  # type: ignore[attr-defined]
    bank = next(a for a in accounts if a["code"] == "1010")  # type: ignore[attr-defined]
    assert (bank["debit"], bank["credit"]) == (Decimal("12000.00"), Decimal("4200.00"))


def test_drafts_and_voids_excluded(db_session: Session, books: Tenant) -> None:
    entry = transfer(db_session, books, "2024-03-01", "equipment", "bank", "500")
    journal.void_entry(db_session, books.id, entry.id)
    tb = reports.trial_balance(db_session, books.workspace, None, day("2024-12-31"))
    assert "1500" not in _rows(tb)
    assert tb["total_debit"] == Decimal("18700.00")


def test_other_workspace_excluded(db_session: Session, books: Tenant, other_tenant: Tenant) -> None:
    transfer(db_session, other_tenant, "2024-01-05", "bank", "capital", "77")
    tb = reports.trial_balance(db_session, books.workspace, None, day("2024-12-31"))
    assert tb["total_debit"] == Decimal("18700.00")


def test_empty_workspace(db_session: Session, tenant: Tenant) -> None:
    tb = reports.trial_balance(db_session, tenant.workspace, None, day("2024-12-31"))
    assert tb["accounts"] == []
    assert tb["balanced"] is True


def test_inverted_period_rejected(db_session: Session, tenant: Tenant) -> None:
    with pytest.raises(DomainError, match="after date_to"):
        reports.trial_balance(db_session, tenant.workspace, day("2024-02-01"), day("2024-01-01"))


def test_many_entries_aggregate_exactly(db_session: Session, tenant: Tenant) -> None:
    for i in range(1, 41):
        transfer(db_session, tenant, f"2024-05-{(i % 28) + 1:02d}", "cash", "sales", f"{i}.01")
    tb = reports.trial_balance(db_session, tenant.workspace, None, day("2024-05-31"))
    assert tb["total_debit"] == sum(Decimal(f"{i}.01") for i in range(1, 41))


def test_api(api: TestClient, books: Tenant) -> None:
    body = api.get("/reports/trial-balance", params={"date_to": "2024-12-31"}).json()
    assert body["currency"] == "USD"
    assert body["total_debit"] == body["total_credit"] == "18700.00"
    assert body["balanced"] is True
    assert {a["code"]: a["net_credit"] for a in body["accounts"]}["3000"] == "10000.00"


@pytest.mark.parametrize(
    "params",
    [{}, {"date_to": "not-a-date"}, {"date_to": "2024-01-01", "date_from": "2024-13-01"}],
)
def test_api_validation(api: TestClient, params: dict[str, str]) -> None:
    assert api.get("/reports/trial-balance", params=params).status_code == 422


def test_api_inverted_period(api: TestClient) -> None:
    response = api.get(
        "/reports/trial-balance", params={"date_from": "2024-02-01", "date_to": "2024-01-01"}
    )
    assert response.status_code == 422
    assert "after date_to" in response.json()["detail"]
