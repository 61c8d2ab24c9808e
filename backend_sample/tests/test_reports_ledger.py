"""Account ledger with running balance (window function)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend_sample.errors import NotFound
from backend_sample.services import reports
from backend_sample.tests.factories import Tenant, day, transfer


@pytest.fixture
def books(db_session: Session, tenant: Tenant) -> Tenant:
    transfer(db_session, tenant, "2024-01-02", "bank", "capital", "1000")
    transfer(db_session, tenant, "2024-01-05", "rent", "bank", "250")
    transfer(db_session, tenant, "2024-01-05", "bank", "sales", "75.50")
    transfer(db_session, tenant, "2024-02-01", "salaries", "bank", "500")
    return tenant


def test_running_balance(db_session: Session, books: Tenant) -> None:
    ledger = reports.account_ledger(
        db_session, books.workspace, books["bank"].id, None, day("2024-12-31")
    )
    assert ledger["opening_balance"] == 0
    assert [line["balance"] for line in ledger["lines"]] == [  # type: ignore[attr-defined]
        Decimal("1000.00"),
        Decimal("750.00"),
        Decimal("825.50"),
        Decimal("325.50"),
    ]
    assert ledger["closing_balance"] == Decimal("325.50")


def test_opening_balance_from_earlier_entries(db_session: Session, books: Tenant) -> None:
    ledger = reports.account_ledger(
        db_session, books.workspace, books["bank"].id, day("2024-01-05"), day("2024-01-31")
    )
    assert ledger["opening_balance"] == Decimal("1000.00")
    assert len(ledger["lines"]) == 2  # type: ignore[arg-type]
    assert ledger["closing_balance"] == Decimal("825.50")


@pytest.mark.parametrize(
    ("account", "closing"),
    [("capital", "1000.00"), ("sales", "75.50"), ("rent", "250.00"), ("salaries", "500.00")],
)
def test_natural_sign_per_type(
    db_session: Session, books: Tenant, account: str, closing: str
) -> None:
    ledger = reports.account_ledger(
        db_session, books.workspace, books[account].id, None, day("2024-12-31")
    )
    assert ledger["closing_balance"] == Decimal(closing)


def test_empty_period_closing_is_opening(db_session: Session, books: Tenant) -> None:
    ledger = reports.account_ledger(
        db_session, books.workspace, books["bank"].id, day("2024-03-01"), day("2024-03-31")
    )
    assert ledger["lines"] == []
    assert ledger["closing_balance"] == ledger["opening_balance"] == Decimal("325.50")


def test_foreign_account(db_session: Session, books: Tenant, other_tenant: Tenant) -> None:
    with pytest.raises(NotFound):
        reports.account_ledger(
            db_session, books.workspace, other_tenant["bank"].id, None, day("2024-12-31")
        )


def test_api(api: TestClient, books: Tenant) -> None:
    body = api.get(f"/accounts/{books['bank'].id}/ledger", params={"date_to": "2024-01-31"}).json()
    assert [ln["balance"] for ln in body["lines"]] == ["1000.00", "750.00", "825.50"]
    assert body["lines"][1]["credit"] == "250.00"
    assert body["code"] == "1010"
