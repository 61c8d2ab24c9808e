"""Parsing of bank statement CSV exports (pure functions, no database).

Real bank exports vary: a UTF-8 BOM, ``;`` instead of ``,``, quoted fields with
embedded delimiters, thousands separators, decimal commas, a signed amount column
*or* separate debit/credit (money out / money in) columns, and a running balance.
Columns are found by header name (with common aliases). Every problem is reported
with its row number (the header is row 1) so users can fix the file; the caller
imports nothing unless the whole file parses.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("date", "booking date", "transaction date", "posting date", "value date"),
    "description": ("description", "details", "narrative", "payee", "memo", "text"),
    "amount": ("amount", "value"),
    "debit": ("debit", "money out", "withdrawal", "withdrawals", "paid out"),
    "credit": ("credit", "money in", "deposit", "deposits", "paid in"),
    "reference": ("reference", "ref", "transaction id", "id"),
    "balance": ("balance", "running balance"),
}

DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y")

_CURRENCY_SYMBOLS = re.compile(r"[€$£¥]|\b[A-Z]{3}\b")


@dataclass(frozen=True)
class ParsedRow:
    """A statement row after validation; ``amount`` is positive for money in."""

    row: int
    date: dt.date
    description: str
    amount: Decimal
    reference: str | None
    balance: Decimal | None


@dataclass
class ParseResult:
    """Parsed rows plus per-row errors; importable only when ``errors`` is empty."""

    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[dict[str, object]] = field(default_factory=list)


def parse_amount(raw: str, decimal_separator: str = ".") -> Decimal:
    """Parse ``1,234.56``, ``-12.00``, ``(45.10)``, ``+3``, ``1.234,56`` (decimal comma).

    Raises ``ValueError`` with a readable reason.
    """
    text = _CURRENCY_SYMBOLS.sub("", raw).strip().replace("\u00a0", "").replace(" ", "")
    if not text:
        raise ValueError("amount is empty")
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1]
    if text.endswith("-"):  # some banks print trailing minus: 12.50-
        negative, text = True, text[:-1]
    if text.startswith(("-", "+")):
        negative, text = negative or text[0] == "-", text[1:]
    thousands = "," if decimal_separator == "." else "."
    if thousands in text:
        groups = text.split(decimal_separator)[0].split(thousands)
        if any(len(g) != 3 for g in groups[1:]) or not groups[0]:
            raise ValueError(f"invalid amount {raw!r}: misplaced thousands separator")
        text = text.replace(thousands, "")
    text = text.replace(decimal_separator, ".")
    if not re.fullmatch(r"\d+(\.\d{1,2})?", text):
        raise ValueError(f"invalid amount {raw!r}")
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex above already guards this
        raise ValueError(f"invalid amount {raw!r}") from None
    return -value if negative else value


def parse_date(raw: str, date_format: str | None = None) -> dt.date:
    """Parse with the given format, or ISO ``YYYY-MM-DD`` by default."""
    text = raw.strip()
    fmt = date_format or DATE_FORMATS[0]
    try:
        return dt.datetime.strptime(text, fmt).date()
    except ValueError:
        raise ValueError(f"invalid date {raw!r} (expected format {fmt})") from None


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def _map_header(header: list[str]) -> dict[str, int]:
    mapping: dict[str, int] = {}
    for index, name in enumerate(header):
        key = " ".join(name.strip().lower().replace("_", " ").split())
        for column, aliases in COLUMN_ALIASES.items():
            if key in aliases and column not in mapping:
                mapping[column] = index
    return mapping


def parse_statement(
    data: bytes | str,
    *,
    date_format: str | None = None,
    decimal_separator: str = ".",
    delimiter: str | None = None,
) -> ParseResult:
    """Parse a whole file; never raises for bad content, collects errors instead."""
    result = ParseResult()
    text = _decode(data)
    if not text.strip():
        result.errors.append({"row": 0, "reason": "file is empty"})
        return result
    if delimiter is None:
        first_line = text.splitlines()[0]
        delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader)
    columns = _map_header(header)
    problems = []
    if "date" not in columns:
        problems.append("no date column")
    if "amount" not in columns and not {"debit", "credit"} <= columns.keys():
        problems.append("no amount column (or debit and credit columns)")
    if problems:
        result.errors.append({"row": 1, "reason": "header: " + "; ".join(problems)})
        return result
    row_number = 1
    for record in reader:
        row_number += 1
        if not any(cell.strip() for cell in record):
            continue  # blank lines are common at the end of exports
        try:
            result.rows.append(
                _parse_record(
                    record, row_number, len(header), columns, date_format, decimal_separator
                )
            )
        except ValueError as exc:
            result.errors.append({"row": row_number, "reason": str(exc)})
    if not result.rows and not result.errors:
        result.errors.append({"row": 1, "reason": "file has a header but no data rows"})
    return result


def _parse_record(
    record: list[str],
    row_number: int,
    width: int,
    columns: dict[str, int],
    date_format: str | None,
    decimal_separator: str,
) -> ParsedRow:
    if len(record) != width:
        raise ValueError(f"expected {width} fields, found {len(record)}")

    def cell(name: str) -> str:
        index = columns.get(name)
        return record[index].strip() if index is not None else ""

    date = parse_date(cell("date"), date_format)
    if "amount" in columns:
        amount = parse_amount(cell("amount"), decimal_separator)
    else:
        debit, credit = cell("debit"), cell("credit")
        if debit and credit:
            raise ValueError("both debit and credit are filled in")
        if not debit and not credit:
            raise ValueError("neither debit nor credit is filled in")
        # Bank perspective: a debit is money leaving the account.
        amount = (
            -abs(parse_amount(debit, decimal_separator))
            if debit
            else abs(parse_amount(credit, decimal_separator))
        )
    if amount == 0:
        raise ValueError("amount is zero")
    balance_text = cell("balance")
    balance = parse_amount(balance_text, decimal_separator) if balance_text else None
    reference = cell("reference") or None
    if reference is not None and len(reference) > 100:
        raise ValueError("reference is longer than 100 characters")
    description = " ".join(cell("description").split())
    return ParsedRow(row_number, date, description, amount, reference, balance)
