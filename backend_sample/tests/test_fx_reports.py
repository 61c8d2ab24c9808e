"""Reports convert foreign-currency entries into the reporting currency."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend_sample.errors import FxRateMissing
from backend_sample.services import reports
from backend_sample.services.workspaces import update_workspace
from backend_sample.tests.factories import Tenant, day, set_rate, transfer


@pytest.fixture
def books(db_session: Session, tenant: Tenant) -> Tenant:
    set_rate(db_session, tenant, "EUR", "USD", "2024-01-01", "1.10")
    set_rate(db_session, tenant, "EUR", "USD", "2024-02-01", "1.20")
    transfer(db_session, tenant, "2024-01-10", "bank", "sales", "100", currency="EUR")
    transfer(db_session, tenant, "2024-02-10", "bank", "sales", "100", currency="EUR")
    transfer(db_session, tenant, "2024-02-11", "bank", "sales", "50")
    return tenant


def test_trial_balance_converts_each_entry_at_its_date(db_session: Session, books: Tenant) -> None:
    tb = reports.trial_balance(db_session, books.workspace, None, day("2024-12-31"))
    assert tb["total_debit"] == Decimal("280.00")
    assert {a["code"]: a["net_credit"] for a in tb["accounts"]}["4000"] == Decimal("280.00")  # type: ignore[attr-defined]


def test_income_statement_converted(db_session: Session, books: Tenant) -> None:
    statement = reports.income_statement(
        db_session, books.workspace, day("2024-02-01"), day("2024-02-29")
    )
    assert statement["total_income"] == Decimal("170.00")


def test_missing_rate_is_clear_error(db_session: Session, books: Tenant) -> None:
    transfer(db_session, books, "2024-01-05", "bank", "sales", "10", currency="GBP")
    with pytest.raises(FxRateMissing, match="GBP->USD on or before 2024-01-05"):
        reports.trial_balance(db_session, books.workspace, None, day("2024-12-31"))


def test_missing_rate_outside_period_is_irrelevant(db_session: Session, books: Tenant) -> None:
    transfer(db_session, books, "2024-05-05", "bank", "sales", "10", currency="GBP")
    tb = reports.trial_balance(db_session, books.workspace, None, day("2024-04-30"))
    assert tb["total_debit"] == Decimal("280.00")


def test_entry_before_first_rate(db_session: Session, books: Tenant) -> None:
    transfer(db_session, books, "2023-12-31", "bank", "sales", "10", currency="EUR")
    with pytest.raises(FxRateMissing, match="EUR->USD on or before 2023-12-31"):
        reports.balance_sheet(db_session, books.workspace, day("2024-12-31"))


def test_changing_reporting_currency(db_session: Session, books: Tenant) -> None:
    update_workspace(db_session, books.workspace, None, "EUR")
    with pytest.raises(FxRateMissing, match="USD->EUR"):
        reports.trial_balance(db_session, books.workspace, None, day("2024-12-31"))
    set_rate(db_session, books, "USD", "EUR", "2024-01-01", "0.90")
    tb = reports.trial_balance(db_session, books.workspace, None, day("2024-12-31"))
    assert tb["currency"] == "EUR"
    assert tb["total_debit"] == Decimal("245.00")


def test_cash_flow_converted(db_session: Session, books: Tenant) -> None:
    flow = reports.monthly_cash_flow(
        db_session, books.workspace, day("2024-01-01"), day("2024-02-29")
    )
    assert [m["inflow"] for m in flow["months"]] == [Decimal("110.00"), Decimal("170.00")]  # type: ignore[attr-defined]


def test_report_api_missing_rate_is_422(
    api: TestClient, db_session: Session, books: Tenant
) -> None:
    transfer(db_session, books, "2024-01-05", "bank", "sales", "10", currency="CHF")
    for path, params in [
        ("/reports/trial-balance", {"date_to": "2024-12-31"}),
        ("/reports/balance-sheet", {"as_of": "2024-12-31"}),
        ("/reports/income-statement", {"date_to": "2024-12-31"}),
        ("/reports/cash-flow", {"date_from": "2024-01-01", "date_to": "2024-12-31"}),
    ]:
        response = api.get(path, params=params)
        assert response.status_code == 422, path
        assert response.json()["errors"] == {"base": "CHF", "quote": "USD", "date": "2024-01-05"}


def test_rounding_per_line_to_cents(db_session: Session, tenant: Tenant) -> None:
    set_rate(db_session, tenant, "JPY", "USD", "2024-01-01", "0.00671234")
    transfer(db_session, tenant, "2024-01-10", "bank", "sales", "12345", currency="JPY")
    tb = reports.trial_balance(db_session, tenant.workspace, None, day("2024-12-31"))
    assert tb["total_debit"] == Decimal("82.86")
