"""FX rates: the rate on or before a date, upserts, and clear errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend_sample.errors import DomainError, FxRateMissing
from backend_sample.models import FxRate
from backend_sample.services import fx
from backend_sample.tests.factories import Tenant, day, set_rate


@pytest.fixture
def rates(db_session: Session, tenant: Tenant) -> Tenant:
    set_rate(db_session, tenant, "EUR", "USD", "2024-01-01", "1.10")
    set_rate(db_session, tenant, "EUR", "USD", "2024-02-01", "1.08")
    set_rate(db_session, tenant, "EUR", "USD", "2024-03-01", "1.12345678")
    return tenant


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        ("2024-01-01", "1.10"),
        ("2024-01-31", "1.10"),
        ("2024-02-01", "1.08"),
        ("2024-02-29", "1.08"),
        ("2024-03-01", "1.12345678"),
        ("2030-01-01", "1.12345678"),
    ],
)
def test_rate_on_or_before(db_session: Session, rates: Tenant, on: str, expected: str) -> None:
    assert fx.get_rate(db_session, rates.id, "EUR", "USD", day(on)) == Decimal(expected)


def test_no_rate_before_first(db_session: Session, rates: Tenant) -> None:
    with pytest.raises(FxRateMissing) as caught:
        fx.get_rate(db_session, rates.id, "EUR", "USD", day("2023-12-31"))
    assert caught.value.message == "no exchange rate EUR->USD on or before 2023-12-31"
    assert caught.value.details == {"base": "EUR", "quote": "USD", "date": "2023-12-31"}


def test_inverse_rate_is_not_guessed(db_session: Session, rates: Tenant) -> None:
    with pytest.raises(FxRateMissing, match="USD->EUR"):
        fx.get_rate(db_session, rates.id, "USD", "EUR", day("2024-02-15"))


def test_same_currency_is_one(db_session: Session, tenant: Tenant) -> None:
    assert fx.get_rate(db_session, tenant.id, "USD", "USD", day("1999-01-01")) == 1


def test_rates_are_per_workspace(db_session: Session, rates: Tenant, other_tenant: Tenant) -> None:
    with pytest.raises(FxRateMissing):
        fx.get_rate(db_session, other_tenant.id, "EUR", "USD", day("2024-02-15"))


@pytest.mark.parametrize(
    ("amount", "on", "expected"),
    [
        ("100.00", "2024-01-15", "110.00"),
        ("100.00", "2024-02-15", "108.00"),
        ("100.00", "2024-03-15", "112.35"),
        ("0.01", "2024-03-15", "0.01"),
        ("33.33", "2024-01-15", "36.66"),
        ("-50.00", "2024-02-15", "-54.00"),
        ("1000000.00", "2024-03-15", "1123456.78"),
    ],
)
def test_convert_rounds_half_up_to_cents(
    db_session: Session, rates: Tenant, amount: str, on: str, expected: str
) -> None:
    assert fx.convert(db_session, rates.id, Decimal(amount), "EUR", "USD", day(on)) == Decimal(
        expected
    )


def test_upsert_corrects_rate(db_session: Session, rates: Tenant) -> None:
    corrected = fx.set_rate(db_session, rates.id, "EUR", "USD", day("2024-02-01"), Decimal("1.09"))
    assert corrected.rate == Decimal("1.09")
    assert len(fx.list_rates(db_session, rates.id, "EUR", "USD")) == 3
    assert fx.get_rate(db_session, rates.id, "EUR", "USD", day("2024-02-10")) == Decimal("1.09")


@pytest.mark.parametrize(
    ("base", "quote", "rate", "message"),
    [
        ("EUR", "EUR", "1", "must differ"),
        ("EUR", "USD", "0", "positive"),
        ("EUR", "USD", "-1.2", "positive"),
        ("XXX", "USD", "1", "unknown currency 'XXX'"),
        ("EUR", "QQQ", "1", "unknown currency 'QQQ'"),
    ],
)
def test_set_rate_validation(
    db_session: Session, tenant: Tenant, base: str, quote: str, rate: str, message: str
) -> None:
    with pytest.raises(DomainError, match=message):
        fx.set_rate(db_session, tenant.id, base, quote, day("2024-01-01"), Decimal(rate))


def test_list_filters(db_session: Session, rates: Tenant) -> None:
    set_rate(db_session, rates, "GBP", "USD", "2024-01-01", "1.27")
    assert len(fx.list_rates(db_session, rates.id)) == 4
    assert [r.rate_date for r in fx.list_rates(db_session, rates.id, base="EUR")] == [
        day("2024-01-01"),
        day("2024-02-01"),
        day("2024-03-01"),
    ]
    assert [r.base_currency for r in fx.list_rates(db_session, rates.id, quote="USD")][-1] == "GBP"


@pytest.mark.parametrize(
    ("rate", "constraint"),
    [("0", "ck_fx_rates_positive"), ("-1", "ck_fx_rates_positive")],
)
def test_database_checks(db_session: Session, tenant: Tenant, rate: str, constraint: str) -> None:
    db_session.add(
        FxRate(
            workspace_id=tenant.id,
            base_currency="EUR",
            quote_currency="USD",
            rate_date=day("2024-01-01"),
            rate=Decimal(rate),
        )
    )
    with pytest.raises(IntegrityError, match=constraint):
        db_session.flush()
    db_session.rollback()


def test_database_rejects_same_currency_pair(db_session: Session, tenant: Tenant) -> None:
    db_session.add(
        FxRate(
            workspace_id=tenant.id,
            base_currency="EUR",
            quote_currency="EUR",
            rate_date=day("2024-01-01"),
            rate=Decimal(1),
        )
    )
    with pytest.raises(IntegrityError, match="ck_fx_rates_distinct_currencies"):
        db_session.flush()
    db_session.rollback()


def test_eight_decimal_precision_kept(db_session: Session, tenant: Tenant) -> None:
    stored = fx.set_rate(
        db_session, tenant.id, "JPY", "USD", day("2024-01-01"), Decimal("0.00671234")
    )
    db_session.expire_all()
    assert db_session.get(FxRate, stored.id).rate == Decimal("0.00671234")  # type: ignore[union-attr]
