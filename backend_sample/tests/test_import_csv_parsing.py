"""Parsing of real-world bank CSV exports (pure functions; no database needed)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend_sample.services.statement_csv import parse_amount, parse_date, parse_statement


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12.50", "12.50"),
        ("-12.50", "-12.50"),
        ("+12.50", "12.50"),
        ("1,234.56", "1234.56"),
        ("-1,234,567.89", "-1234567.89"),
        ("(45.10)", "-45.10"),
        ("12.50-", "-12.50"),
        ("$1,000.00", "1000.00"),
        ("€ 99.99", "99.99"),
        ("USD 5", "5"),
        (" 7.5 ", "7.5"),
        ("0.01", "0.01"),
        ("1\u00a0000.00", "1000.00"),
        ("100", "100"),
    ],
)
def test_parse_amount(raw: str, expected: str) -> None:
    assert parse_amount(raw) == Decimal(expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.234,56", "1234.56"),
        ("-12,5", "-12.5"),
        ("1.000.000,00", "1000000.00"),
        ("0,99", "0.99"),
        ("(3,00)", "-3.00"),
    ],
)
def test_parse_amount_decimal_comma(raw: str, expected: str) -> None:
    assert parse_amount(raw, ",") == Decimal(expected)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("abc", "invalid amount"),
        ("1.2.3", "invalid amount"),
        ("1,23.00", "thousands separator"),
        (",123.00", "thousands separator"),
        ("12.345", "invalid amount"),
        ("--5", "invalid amount"),
        ("1e5", "invalid amount"),
        ("$", "empty"),
    ],
)
def test_parse_amount_errors(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_amount(raw)


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False))
def test_parse_amount_round_trips_formatted_values(value: Decimal) -> None:
    assert parse_amount(f"{value:,.2f}") == value
    assert parse_amount(f"{value:.2f}") == value


@pytest.mark.parametrize(
    ("raw", "fmt", "expected"),
    [
        ("2024-03-01", None, dt.date(2024, 3, 1)),
        ("01/03/2024", "%d/%m/%Y", dt.date(2024, 3, 1)),
        ("03/01/2024", "%m/%d/%Y", dt.date(2024, 3, 1)),
        ("01.03.2024", "%d.%m.%Y", dt.date(2024, 3, 1)),
        (" 2024-02-29 ", None, dt.date(2024, 2, 29)),
    ],
)
def test_parse_date(raw: str, fmt: str | None, expected: dt.date) -> None:
    assert parse_date(raw, fmt) == expected


@pytest.mark.parametrize("raw", ["2023-02-29", "2024-13-01", "01/03/2024", "", "yesterday"])
def test_parse_date_errors(raw: str) -> None:
    with pytest.raises(ValueError, match="invalid date"):
        parse_date(raw)


def test_parse_statement_basic() -> None:
    result = parse_statement(
        "Date,Description,Amount,Reference,Balance\n"
        "2024-03-01,Coffee,-3.50,R1,96.50\n"
        "2024-03-02,Salary,2000.00,R2,2096.50\n"
    )
    assert result.errors == []
    assert [(r.row, r.amount, r.reference, r.balance) for r in result.rows] == [
        (2, Decimal("-3.50"), "R1", Decimal("96.50")),
        (3, Decimal("2000.00"), "R2", Decimal("2096.50")),
    ]


def test_parse_statement_with_bom_bytes() -> None:
    data = "\ufeffDate,Description,Amount\n2024-03-01,Coffee,-3.50\n".encode()
    result = parse_statement(data)
    assert result.errors == []
    assert result.rows[0].description == "Coffee"


def test_parse_statement_cp1252_fallback() -> None:
    data = "Date,Description,Amount\n2024-03-01,Caf\xe9,-3.50\n".encode("cp1252")
    assert parse_statement(data).rows[0].description == "Café"


def test_quoted_fields_with_commas_and_quotes() -> None:
    result = parse_statement(
        'Date,Description,Amount\n2024-03-01,"ACME, Inc. ""Widgets""","-1,234.00"\n'
    )
    assert result.errors == []
    assert result.rows[0].description == 'ACME, Inc. "Widgets"'
    assert result.rows[0].amount == Decimal("-1234.00")


def test_multiline_quoted_description_is_flattened() -> None:
    result = parse_statement('Date,Description,Amount\n2024-03-01,"line one\nline two",5\n')
    assert result.rows[0].description == "line one line two"


def test_semicolon_delimiter_and_decimal_comma() -> None:
    result = parse_statement(
        "Buchungstag;Text;Betrag\n".replace("Buchungstag", "Date")
        .replace("Text", "Description")
        .replace("Betrag", "Amount")
        + "2024-03-01;Miete;-1.200,00\n",
        decimal_separator=",",
    )
    assert result.errors == []
    assert result.rows[0].amount == Decimal("-1200.00")


def test_debit_credit_columns() -> None:
    result = parse_statement(
        "Date,Details,Money Out,Money In,Balance\n"
        "2024-03-01,Rent,1200.00,,800.00\n"
        "2024-03-02,Refund,,50.00,850.00\n"
    )
    assert result.errors == []
    assert [r.amount for r in result.rows] == [Decimal("-1200.00"), Decimal("50.00")]


@pytest.mark.parametrize(
    "header",
    [
        "Date,Description,Amount",
        "date,description,amount",
        "Booking Date,Details,Value",
        "Transaction Date,Payee,Amount",
        "Posting_Date,Narrative,Amount",
        "  Value Date ,Memo,  AMOUNT ",
    ],
)
def test_header_aliases(header: str) -> None:
    result = parse_statement(f"{header}\n2024-03-01,Something,-1.00\n")
    assert result.errors == []
    assert result.rows[0].amount == Decimal("-1.00")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("2024-02-30,Bad date,1.00,R,", "invalid date '2024-02-30'"),
        ("2024-03-01,No amount,,R,", "amount is empty"),
        ("2024-03-01,Text amount,ten,R,", "invalid amount 'ten'"),
        ("2024-03-01,Zero,0.00,R,", "amount is zero"),
        ("2024-03-01,Too few,1.00", "expected 5 fields, found 3"),
        ("2024-03-01,Too many,1.00,R,1,extra", "expected 5 fields, found 6"),
        ("2024-03-01,Bad balance,1.00,R,lots", "invalid amount 'lots'"),
        ("2024-03-01,Long ref,1.00," + "x" * 101 + ",", "reference is longer"),
    ],
)
def test_row_errors_name_row_and_reason(row: str, reason: str) -> None:
    result = parse_statement(
        "Date,Description,Amount,Reference,Balance\n2024-03-01,Good,1.00,G,\n" + row + "\n"
    )
    assert len(result.errors) == 1
    assert result.errors[0]["row"] == 3
    assert reason in str(result.errors[0]["reason"])


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("2024-03-01,Both,5.00,5.00", "both debit and credit are filled in"),
        ("2024-03-01,Neither,,", "neither debit nor credit is filled in"),
    ],
)
def test_debit_credit_row_errors(row: str, reason: str) -> None:
    result = parse_statement(f"Date,Description,Debit,Credit\n{row}\n")
    assert result.errors == [{"row": 2, "reason": reason}]


def test_all_bad_rows_are_reported() -> None:
    result = parse_statement(
        "Date,Description,Amount\n"
        "bad,One,1\n"
        "2024-03-01,Two,1\n"
        "2024-03-01,Three,x\n"
        "2024-13-01,Four,y\n"
    )
    assert [e["row"] for e in result.errors] == [2, 4, 5]


def test_blank_lines_are_skipped_but_counted() -> None:
    result = parse_statement("Date,Description,Amount\n\n2024-03-01,A,1\n,,\n2024-03-02,B,x\n")
    assert [r.row for r in result.rows] == [3]
    assert result.errors == [{"row": 5, "reason": "invalid amount 'x'"}]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "file is empty"),
        ("   \n", "file is empty"),
        ("Date,Description,Amount\n", "no data rows"),
        ("Description,Amount\nx,1\n", "no date column"),
        ("Date,Description\n2024-03-01,x\n", "no amount column"),
        ("Date,Description,Debit\n2024-03-01,x,1\n", "no amount column"),
        ("Foo,Bar\n1,2\n", "no date column; no amount column"),
    ],
)
def test_file_level_errors(content: str, reason: str) -> None:
    result = parse_statement(content)
    assert result.rows == []
    assert reason in str(result.errors[0]["reason"])


def test_whitespace_in_description_is_normalised() -> None:
    result = parse_statement("Date,Description,Amount\n2024-03-01,  CARD   PAYMENT  ,1\n")
    assert result.rows[0].description == "CARD PAYMENT"


def test_missing_reference_is_none() -> None:
    result = parse_statement("Date,Description,Amount,Reference\n2024-03-01,X,1,\n")
    assert result.rows[0].reference is None
    assert result.rows[0].balance is None


def test_custom_date_format() -> None:
    result = parse_statement("Date,Description,Amount\n31/01/2024,X,1\n", date_format="%d/%m/%Y")
    assert result.rows[0].date == dt.date(2024, 1, 31)


def test_explicit_delimiter() -> None:
    result = parse_statement("Date|Description|Amount\n2024-03-01|X|1\n", delimiter="|")
    assert result.rows[0].amount == Decimal(1)
