"""Monthly cash flow over cash accounts, with zero months and running balance."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend_sample.services import reports
from backend_sample.services.accounts import update_account
from backend_sample.tests.factories import Tenant, day, make_entry, transfer


@pytest.fixture
def books(db_session: Session, tenant: Tenant) -> Tenant:
    transfer(db_session, tenant, "2023-12-31", "bank", "capital", "1000")
    transfer(db_session, tenant, "2024-01-10", "bank", "sales", "500")
    transfer(db_session, tenant, "2024-01-20", "rent", "bank", "300")
    transfer(db_session, tenant, "2024-01-25", "cash", "bank", "100")
    transfer(db_session, tenant, "2024-03-05", "salaries", "cash", "40")
    transfer(db_session, tenant, "2024-03-06", "receivables", "sales", "999")
    return tenant


def _months(flow: dict[str, object]) -> list[tuple[str, ...]]:
    return [
        (m["month"], *(f"{m[k]:.2f}" for k in ("inflow", "outflow", "net", "closing_balance")))  # type: ignore[index]
        for m in flow["months"]  # type: ignore[attr-defined]
    ]


def test_months_with_running_balance(db_session: Session, books: Tenant) -> None:
    flow = reports.monthly_cash_flow(
        db_session, books.workspace, day("2024-01-01"), day("2024-03-31")
    )
    assert flow["opening_balance"] == Decimal("1000.00")
    assert _months(flow) == [
        ("2024-01", "500.00", "300.00", "200.00", "1200.00"),
        ("2024-02", "0.00", "0.00", "0.00", "1200.00"),
        ("2024-03", "0.00", "40.00", "-40.00", "1160.00"),
    ]
    assert flow["closing_balance"] == Decimal("1160.00")
    assert flow["total_inflow"] == Decimal("500.00")
    assert flow["total_outflow"] == Decimal("340.00")


def test_transfer_between_cash_accounts_is_not_a_flow(db_session: Session, books: Tenant) -> None:
    flow = reports.monthly_cash_flow(
        db_session, books.workspace, day("2024-01-25"), day("2024-01-25")
    )
    assert _months(flow)[0][1:4] == ("0.00", "0.00", "0.00")


def test_non_cash_account_flagged_later_counts(db_session: Session, books: Tenant) -> None:
    update_account(db_session, books.id, books["receivables"].id, is_cash=True)
    flow = reports.monthly_cash_flow(
        db_session, books.workspace, day("2024-03-01"), day("2024-03-31")
    )
    assert flow["total_inflow"] == Decimal("999.00")


@pytest.mark.parametrize(
    ("date_from", "date_to", "months"),
    [
        ("2024-01-15", "2024-01-16", ["2024-01"]),
        ("2024-01-31", "2024-02-01", ["2024-01", "2024-02"]),
        ("2023-11-01", "2024-02-29", ["2023-11", "2023-12", "2024-01", "2024-02"]),
        ("2024-01-01", "2024-12-31", [f"2024-{m:02d}" for m in range(1, 13)]),
    ],
)
def test_month_buckets(
    db_session: Session, books: Tenant, date_from: str, date_to: str, months: list[str]
) -> None:
    flow = reports.monthly_cash_flow(db_session, books.workspace, day(date_from), day(date_to))
    assert [m["month"] for m in flow["months"]] == months  # type: ignore[attr-defined]


def test_partial_first_month_only_counts_from_start(db_session: Session, books: Tenant) -> None:
    flow = reports.monthly_cash_flow(
        db_session, books.workspace, day("2024-01-15"), day("2024-01-31")
    )
    assert flow["opening_balance"] == Decimal("1500.00")
    assert _months(flow) == [("2024-01", "0.00", "300.00", "-300.00", "1200.00")]


def test_drafts_not_counted(db_session: Session, tenant: Tenant) -> None:
    make_entry(db_session, tenant, "2024-01-10", [("bank", 5, 0), ("sales", 0, 5)], post=False)
    flow = reports.monthly_cash_flow(
        db_session, tenant.workspace, day("2024-01-01"), day("2024-01-31")
    )
    assert flow["total_inflow"] == 0


def test_api(api: TestClient, books: Tenant) -> None:
    body = api.get(
        "/reports/cash-flow", params={"date_from": "2024-01-01", "date_to": "2024-02-29"}
    ).json()
    assert body["opening_balance"] == "1000.00"
    assert [m["closing_balance"] for m in body["months"]] == ["1200.00", "1200.00"]
    assert body["months"][1]["inflow"] == "0.00"


def test_api_requires_both_dates(api: TestClient) -> None:
    assert api.get("/reports/cash-flow", params={"date_to": "2024-01-31"}).status_code == 422
