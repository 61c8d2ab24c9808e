"""Money crosses the API as exact strings; inputs with sub-cent precision are refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from backend_sample import schemas
from backend_sample.services.common import quantize_money


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1"), "1.00"),
        (Decimal("1.5"), "1.50"),
        (Decimal("0"), "0.00"),
        (Decimal("-0.01"), "-0.01"),
        (Decimal("1234567890123456.78"), "1234567890123456.78"),
    ],
)
def test_money_serialises_as_two_decimal_string(value: Decimal, expected: str) -> None:
    row = schemas.AmountRow(account_id=1, code="1", name="n", amount=value)
    assert row.model_dump(mode="json")["amount"] == expected
    assert row.model_dump()["amount"] == value


@pytest.mark.parametrize("value", ["0.001", "1.999", "12345678901234567.00"])
def test_money_input_precision(value: str) -> None:
    with pytest.raises(ValidationError):
        schemas.LineIn(account_id=1, debit=Decimal(value))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.005", "0.01"),
        ("0.004", "0.00"),
        ("-0.005", "-0.01"),
        ("2.675", "2.68"),
        ("1.115", "1.12"),
    ],
)
def test_quantize_half_up(value: str, expected: str) -> None:
    assert quantize_money(Decimal(value)) == Decimal(expected)


@pytest.mark.parametrize("code", ["usd", "US", "USDX", "12A", ""])
def test_currency_code_pattern(code: str) -> None:
    with pytest.raises(ValidationError):
        schemas.WorkspaceCreate(name="x", reporting_currency=code)


def test_rate_serialisation_keeps_precision() -> None:
    out = schemas.FxRateOut(
        id=1,
        base_currency="EUR",
        quote_currency="USD",
        rate_date="2024-01-01",  # type: ignore[arg-type]
        rate=Decimal("1.12345678"),
    )
    assert out.model_dump(mode="json")["rate"] == "1.12345678"
