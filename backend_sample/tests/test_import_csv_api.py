"""Statement import over HTTP (raw CSV body)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend_sample.tests.factories import Tenant, csv_text

CSV = {"Content-Type": "text/csv"}
FILE = csv_text(
    "2024-03-01,Opening deposit,1000.00,DEP-1,1000.00",
    '2024-03-02,"Coffee, large",-3.50,,996.50',
)


def _import(api: TestClient, tenant: Tenant, data: str | bytes, **params: str):  # type: ignore[no-untyped-def]
    return api.post(
        f"/accounts/{tenant['bank'].id}/statement-imports", content=data, headers=CSV, params=params
    )


def test_import_returns_batch(api: TestClient, tenant: Tenant) -> None:
    response = _import(api, tenant, FILE, filename="march.csv")
    assert response.status_code == 201
    body = response.json()
    assert body["filename"] == "march.csv"
    assert (body["rows_total"], body["rows_imported"], body["rows_duplicate"]) == (2, 2, 0)


def test_imported_lines_are_listed(api: TestClient, tenant: Tenant) -> None:
    _import(api, tenant, FILE)
    lines = api.get("/statement-lines", params={"account_id": tenant["bank"].id}).json()
    assert [(ln["description"], ln["amount"], ln["balance"]) for ln in lines] == [
        ("Opening deposit", "1000.00", "1000.00"),
        ("Coffee, large", "-3.50", "996.50"),
    ]
    assert all(ln["matched_line_id"] is None for ln in lines)


def test_reimport_reports_duplicates(api: TestClient, tenant: Tenant) -> None:
    _import(api, tenant, FILE)
    body = _import(api, tenant, FILE).json()
    assert (body["rows_imported"], body["rows_duplicate"]) == (0, 2)
    assert len(api.get("/statement-lines").json()) == 2
    assert len(api.get("/statement-imports").json()) == 2


def test_bad_rows_give_422_with_row_numbers(api: TestClient, tenant: Tenant) -> None:
    data = csv_text(
        "2024-03-01,Ok,1.00,,",
        "2024-02-31,Bad date,1.00,,",
        "2024-03-03,Bad amount,1.0.0,,",
    )
    response = _import(api, tenant, data)
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "2 row(s) could not be read; nothing was imported"
    assert body["errors"] == [
        {"row": 3, "reason": "invalid date '2024-02-31' (expected format %Y-%m-%d)"},
        {"row": 4, "reason": "invalid amount '1.0.0'"},
    ]
    assert api.get("/statement-lines").json() == []
    assert api.get("/statement-imports").json() == []


def test_bom_and_crlf(api: TestClient, tenant: Tenant) -> None:
    data = "\ufeffDate,Description,Amount\r\n2024-03-01,Deposit,10.00\r\n".encode()
    body = _import(api, tenant, data).json()
    assert body["rows_imported"] == 1


def test_european_export(api: TestClient, tenant: Tenant) -> None:
    data = "Date;Description;Amount\n01.03.2024;Miete;-1.200,00\n02.03.2024;Gehalt;3.000,00\n"
    response = _import(api, tenant, data, date_format="%d.%m.%Y", decimal_separator=",")
    assert response.status_code == 201
    amounts = [ln["amount"] for ln in api.get("/statement-lines").json()]
    assert amounts == ["-1200.00", "3000.00"]


def test_invalid_decimal_separator_param(api: TestClient, tenant: Tenant) -> None:
    assert _import(api, tenant, FILE, decimal_separator=";").status_code == 422


def test_empty_body(api: TestClient, tenant: Tenant) -> None:
    response = _import(api, tenant, b"")
    assert response.status_code == 422
    assert response.json()["errors"] == [{"row": 0, "reason": "file is empty"}]


def test_import_into_income_account_rejected(api: TestClient, tenant: Tenant) -> None:
    response = api.post(
        f"/accounts/{tenant['sales'].id}/statement-imports", content=FILE, headers=CSV
    )
    assert response.status_code == 422
    assert "asset" in response.json()["detail"]


def test_import_into_foreign_account_is_404(
    api: TestClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    response = api.post(
        f"/accounts/{other_tenant['bank'].id}/statement-imports", content=FILE, headers=CSV
    )
    assert response.status_code == 404


def test_unmatched_filter(api: TestClient, tenant: Tenant) -> None:
    _import(api, tenant, FILE)
    assert len(api.get("/statement-lines", params={"unmatched": True}).json()) == 2


@pytest.mark.parametrize(
    ("header", "row", "amount"),
    [
        ("Date,Description,Debit,Credit", "2024-03-01,Card,12.00,", "-12.00"),
        ("Date,Description,Debit,Credit", "2024-03-01,Refund,,12.00", "12.00"),
        ("Date,Description,Withdrawal,Deposit", "2024-03-01,ATM,40.00,", "-40.00"),
        ("Date,Description,Paid out,Paid in", "2024-03-01,Payroll,,1,500.00", None),
        ("Date,Description,Paid out,Paid in", '2024-03-01,Payroll,,"1,500.00"', "1500.00"),
        ("Date,Description,Amount", "2024-03-01,Fee,(2.50)", "-2.50"),
    ],
)
def test_export_layouts(
    api: TestClient, tenant: Tenant, header: str, row: str, amount: str | None
) -> None:
    response = _import(api, tenant, f"{header}\n{row}\n")
    if amount is None:
        assert response.status_code == 422
        assert response.json()["errors"][0]["row"] == 2
    else:
        assert response.status_code == 201
        assert api.get("/statement-lines").json()[0]["amount"] == amount
