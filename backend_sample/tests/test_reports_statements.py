"""Balance sheet and income statement."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend_sample.services import reports
from backend_sample.tests.factories import Tenant, day, make_entry, transfer


@pytest.fixture
def books(db_session: Session, tenant: Tenant) -> Tenant:
    transfer(db_session, tenant, "2024-01-02", "bank", "capital", "10000")
    transfer(db_session, tenant, "2024-01-03", "equipment", "loan", "4000")
    transfer(db_session, tenant, "2024-01-15", "receivables", "sales", "2500")
    transfer(db_session, tenant, "2024-01-20", "bank", "interest_income", "12.34")
    transfer(db_session, tenant, "2024-01-31", "rent", "payables", "1200")
    transfer(db_session, tenant, "2024-02-05", "payables", "bank", "1200")
    transfer(db_session, tenant, "2024-02-28", "salaries", "bank", "3000")
    transfer(db_session, tenant, "2024-02-28", "bank_fees", "bank", "15.50")
    return tenant


@pytest.mark.parametrize(
    ("as_of", "assets", "liabilities", "earnings"),
    [
        ("2024-01-01", "0.00", "0.00", "0.00"),
        ("2024-01-02", "10000.00", "0.00", "0.00"),
        ("2024-01-31", "16512.34", "5200.00", "1312.34"),
        ("2024-02-29", "12296.84", "4000.00", "-1703.16"),
        ("2025-01-01", "12296.84", "4000.00", "-1703.16"),
    ],
)
def test_balance_sheet_balances(
    db_session: Session, books: Tenant, as_of: str, assets: str, liabilities: str, earnings: str
) -> None:
    sheet = reports.balance_sheet(db_session, books.workspace, day(as_of))
    assert sheet["total_assets"] == Decimal(assets)
    assert sheet["total_liabilities"] == Decimal(liabilities)
    assert sheet["current_earnings"] == Decimal(earnings)
    assert sheet["balanced"] is True


def test_balance_sheet_sections(db_session: Session, books: Tenant) -> None:
    sheet = reports.balance_sheet(db_session, books.workspace, day("2024-02-29"))
    assert [(a["code"], a["balance"]) for a in sheet["assets"]] == [  # type: ignore[attr-defined]
        ("1010", Decimal("5796.84")),
        ("1100", Decimal("2500.00")),
        ("1500", Decimal("4000.00")),
    ]
    assert [(a["code"], a["balance"]) for a in sheet["liabilities"]] == [  # type: ignore[attr-defined]
        ("2000", Decimal("0.00")),
        ("2500", Decimal("4000.00")),
    ]
    assert [(a["code"], a["balance"]) for a in sheet["equity"]] == [("3000", Decimal("10000.00"))]  # type: ignore[attr-defined]
    assert sheet["total_equity"] == Decimal("8296.84")


def test_contra_balance_is_negative(db_session: Session, tenant: Tenant) -> None:
    transfer(db_session, tenant, "2024-01-02", "rent", "bank", "50")
    sheet = reports.balance_sheet(db_session, tenant.workspace, day("2024-01-31"))
    assert sheet["assets"][0]["balance"] == Decimal("-50.00")  # type: ignore[index]
    assert sheet["balanced"] is True


@pytest.mark.parametrize(
    ("date_from", "date_to", "income", "expenses", "net"),
    [
        ("2024-01-01", "2024-01-31", "2512.34", "1200.00", "1312.34"),
        ("2024-02-01", "2024-02-29", "0.00", "3015.50", "-3015.50"),
        (None, "2024-12-31", "2512.34", "4215.50", "-1703.16"),
        ("2024-01-16", "2024-01-30", "12.34", "0.00", "12.34"),
    ],
)
def test_income_statement(
    db_session: Session,
    books: Tenant,
    date_from: str | None,
    date_to: str,
    income: str,
    expenses: str,
    net: str,
) -> None:
    statement = reports.income_statement(
        db_session, books.workspace, day(date_from) if date_from else None, day(date_to)
    )
    assert statement["total_income"] == Decimal(income)
    assert statement["total_expenses"] == Decimal(expenses)
    assert statement["net_income"] == Decimal(net)


def test_income_statement_lines(db_session: Session, books: Tenant) -> None:
    statement = reports.income_statement(db_session, books.workspace, None, day("2024-12-31"))
    assert [(r["code"], r["amount"]) for r in statement["income"]] == [  # type: ignore[attr-defined]
        ("4000", Decimal("2500.00")),
        ("4100", Decimal("12.34")),
    ]
    assert [r["code"] for r in statement["expenses"]] == ["5000", "5100", "5200"]  # type: ignore[attr-defined]


def test_income_statement_ignores_balance_sheet_accounts(
    db_session: Session, tenant: Tenant
) -> None:
    transfer(db_session, tenant, "2024-01-02", "bank", "capital", "100")
    statement = reports.income_statement(db_session, tenant.workspace, None, day("2024-12-31"))
    assert statement["income"] == statement["expenses"] == []
    assert statement["net_income"] == 0


def test_refund_reduces_income(db_session: Session, tenant: Tenant) -> None:
    transfer(db_session, tenant, "2024-01-02", "bank", "sales", "100")
    make_entry(db_session, tenant, "2024-01-03", [("sales", 30, 0), ("bank", 0, 30)])
    statement = reports.income_statement(db_session, tenant.workspace, None, day("2024-12-31"))
    assert statement["total_income"] == Decimal("70.00")


def test_net_income_equals_earnings_on_balance_sheet(db_session: Session, books: Tenant) -> None:
    statement = reports.income_statement(db_session, books.workspace, None, day("2024-02-29"))
    sheet = reports.balance_sheet(db_session, books.workspace, day("2024-02-29"))
    assert statement["net_income"] == sheet["current_earnings"]


def test_balance_sheet_api(api: TestClient, books: Tenant) -> None:
    body = api.get("/reports/balance-sheet", params={"as_of": "2024-02-29"}).json()
    assert body["total_assets"] == "12296.84"
    assert body["current_earnings"] == "-1703.16"
    assert body["balanced"] is True


def test_income_statement_api(api: TestClient, books: Tenant) -> None:
    body = api.get(
        "/reports/income-statement", params={"date_from": "2024-01-01", "date_to": "2024-01-31"}
    ).json()
    assert (body["total_income"], body["total_expenses"], body["net_income"]) == (
        "2512.34",
        "1200.00",
        "1312.34",
    )


def test_balance_sheet_api_requires_date(api: TestClient) -> None:
    assert api.get("/reports/balance-sheet").status_code == 422
