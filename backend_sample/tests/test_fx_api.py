"""FX endpoints."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


def _put(api: TestClient, rate: str = "1.10", when: str = "2024-01-01", base: str = "EUR"):  # type: ignore[no-untyped-def]
    return api.put(
        "/fx/rates",
        json={"base_currency": base, "quote_currency": "USD", "rate_date": when, "rate": rate},
    )


def test_put_and_list(api: TestClient) -> None:
    response = _put(api)
    assert response.status_code == 200
    assert response.json()["rate"] == "1.10000000"
    listed = api.get("/fx/rates").json()
    assert [(r["base_currency"], r["quote_currency"], r["rate"]) for r in listed] == [
        ("EUR", "USD", "1.10000000")
    ]


def test_put_is_idempotent_upsert(api: TestClient) -> None:
    first = _put(api, "1.10").json()
    second = _put(api, "1.11").json()
    assert first["id"] == second["id"]
    assert [r["rate"] for r in api.get("/fx/rates").json()] == ["1.11000000"]


@pytest.mark.parametrize("rate", ["0", "-1", "1.123456789", "abc"])
def test_put_validation(api: TestClient, rate: str) -> None:
    assert _put(api, rate).status_code == 422
    assert api.get("/fx/rates").json() == []


def test_put_unknown_currency(api: TestClient) -> None:
    response = _put(api, base="XYZ")
    assert response.status_code == 422
    assert "XYZ" in response.json()["detail"]


def test_list_by_pair(api: TestClient) -> None:
    _put(api, base="EUR")
    _put(api, base="GBP", rate="1.27")
    assert [r["base_currency"] for r in api.get("/fx/rates", params={"base": "GBP"}).json()] == [
        "GBP"
    ]


@pytest.mark.parametrize(
    ("on", "converted", "rate"),
    [("2024-01-15", "110.00", "1.10000000"), ("2024-02-15", "108.00", "1.08000000")],
)
def test_convert(api: TestClient, on: str, converted: str, rate: str) -> None:
    _put(api, "1.10", "2024-01-01")
    _put(api, "1.08", "2024-02-01")
    body = api.get(
        "/fx/convert", params={"amount": "100", "base": "EUR", "quote": "USD", "on": on}
    ).json()
    assert (body["converted"], body["rate"], body["amount"]) == (converted, rate, "100.00")


def test_convert_missing_rate(api: TestClient) -> None:
    response = api.get(
        "/fx/convert", params={"amount": "1", "base": "EUR", "quote": "USD", "on": "2024-01-01"}
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": "no exchange rate EUR->USD on or before 2024-01-01",
        "errors": {"base": "EUR", "quote": "USD", "date": "2024-01-01"},
    }


def test_rates_invisible_to_other_workspace(
    api: TestClient, client: TestClient, other_tenant
) -> None:  # type: ignore[no-untyped-def]
    _put(api)
    assert api.get("/fx/rates", headers={"X-API-Key": other_tenant.key}).json() == []
