"""Request/response models.

Money crosses the API as a JSON *string* with exactly two decimals ("1234.50"):
JSON numbers are floats in most clients, and floats cannot represent cents.
Inputs accept strings or numbers but reject more than two decimal places.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from backend_sample.services.common import quantize_money

Money = Annotated[
    Decimal,
    Field(max_digits=18, decimal_places=2),
    PlainSerializer(lambda v: str(quantize_money(v)), return_type=str, when_used="json"),
]
PositiveMoney = Annotated[Money, Field(ge=0)]
Rate = Annotated[
    Decimal,
    Field(gt=0, max_digits=18, decimal_places=8),
    PlainSerializer(lambda v: str(v), return_type=str, when_used="json"),
]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
AccountType = Literal["asset", "liability", "equity", "income", "expense"]


class ORM(BaseModel):
    """Base for responses built from ORM objects."""

    model_config = ConfigDict(from_attributes=True)


class WorkspaceCreate(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    reporting_currency: CurrencyCode = "USD"


class WorkspaceUpdate(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    reporting_currency: CurrencyCode | None = None


class WorkspaceOut(ORM):
    id: int
    name: str
    reporting_currency: str
    created_at: dt.datetime


class ApiKeyCreate(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]


class ApiKeyOut(ORM):
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret; shown only in this response.")


class WorkspaceCreated(BaseModel):
    workspace: WorkspaceOut
    api_key: ApiKeyCreated


class CurrencyOut(ORM):
    code: str
    name: str
    minor_units: int


class AccountCreate(BaseModel):
    code: Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9._-]+$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    type: AccountType
    parent_id: int | None = None
    is_cash: bool = False


class AccountUpdate(BaseModel):
    """PATCH body; an explicit ``"parent_id": null`` detaches from the parent."""

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    parent_id: int | None = None
    is_cash: bool | None = None


class AccountOut(ORM):
    id: int
    code: str
    name: str
    type: str
    parent_id: int | None
    is_archived: bool
    is_cash: bool


class LineIn(BaseModel):
    account_id: int
    debit: PositiveMoney = Decimal(0)
    credit: PositiveMoney = Decimal(0)
    memo: Annotated[str, Field(max_length=500)] | None = None


class EntryCreate(BaseModel):
    entry_date: dt.date
    description: Annotated[str, Field(min_length=1, max_length=1000)]
    reference: Annotated[str, Field(max_length=100)] | None = None
    currency: CurrencyCode | None = None
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=500)]
    post: bool = False


class EntryUpdate(BaseModel):
    entry_date: dt.date | None = None
    description: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    reference: Annotated[str, Field(max_length=100)] | None = None
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=500)] | None = None


class ReverseIn(BaseModel):
    entry_date: dt.date | None = None


class LineOut(ORM):
    id: int
    line_no: int
    account_id: int
    debit: Money
    credit: Money
    memo: str | None


class EntryOut(ORM):
    id: int
    entry_date: dt.date
    description: str
    reference: str | None
    status: str
    currency: str
    reverses_id: int | None
    posted_at: dt.datetime | None
    voided_at: dt.datetime | None
    lines: list[LineOut]


class FxRateIn(BaseModel):
    base_currency: CurrencyCode
    quote_currency: CurrencyCode
    rate_date: dt.date
    rate: Rate


class FxRateOut(ORM):
    id: int
    base_currency: str
    quote_currency: str
    rate_date: dt.date
    rate: Rate


class ConversionOut(BaseModel):
    base_currency: str
    quote_currency: str
    on: dt.date
    rate: Rate
    amount: Money
    converted: Money


class ImportBatchOut(ORM):
    id: int
    account_id: int
    filename: str | None
    rows_total: int
    rows_imported: int
    rows_duplicate: int
    imported_at: dt.datetime


class StatementLineOut(ORM):
    id: int
    account_id: int
    batch_id: int
    line_date: dt.date
    description: str
    amount: Money
    reference: str | None
    balance: Money | None
    matched_line_id: int | None
    match_method: str | None


class RuleCreate(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    pattern: Annotated[str, Field(min_length=1, max_length=200)]
    account_id: int
    amount_tolerance: PositiveMoney = Decimal(0)
    date_window_days: Annotated[int, Field(ge=0, le=366)] = 0
    priority: int = 100


class RuleUpdate(BaseModel):
    is_active: bool


class RuleOut(ORM):
    id: int
    name: str
    pattern: str
    account_id: int
    amount_tolerance: Money
    date_window_days: int
    priority: int
    is_active: bool


class MatchIn(BaseModel):
    journal_line_id: int


class ReconcileResult(BaseModel):
    exact: int
    rule: int


class UnmatchedStatementLine(BaseModel):
    id: int
    date: dt.date
    description: str
    amount: Money
    reference: str | None


class UnmatchedJournalLine(BaseModel):
    id: int
    entry_id: int
    date: dt.date
    description: str
    amount: Money


class ReconciliationReport(BaseModel):
    account_id: int
    matched: int
    unmatched_statement_lines: list[UnmatchedStatementLine]
    unmatched_journal_lines: list[UnmatchedJournalLine]
    unmatched_statement_total: Money
    unmatched_journal_total: Money


class TrialBalanceRow(BaseModel):
    account_id: int
    code: str
    name: str
    type: str
    debit: Money
    credit: Money
    net_debit: Money
    net_credit: Money


class TrialBalance(BaseModel):
    currency: str
    date_from: dt.date | None
    date_to: dt.date
    accounts: list[TrialBalanceRow]
    total_debit: Money
    total_credit: Money
    balanced: bool


class BalanceRow(BaseModel):
    account_id: int
    code: str
    name: str
    balance: Money


class BalanceSheet(BaseModel):
    currency: str
    as_of: dt.date
    assets: list[BalanceRow]
    liabilities: list[BalanceRow]
    equity: list[BalanceRow]
    current_earnings: Money
    total_assets: Money
    total_liabilities: Money
    total_equity: Money
    balanced: bool


class AmountRow(BaseModel):
    account_id: int
    code: str
    name: str
    amount: Money


class IncomeStatement(BaseModel):
    currency: str
    date_from: dt.date | None
    date_to: dt.date
    income: list[AmountRow]
    expenses: list[AmountRow]
    total_income: Money
    total_expenses: Money
    net_income: Money


class CashFlowMonth(BaseModel):
    month: str
    inflow: Money
    outflow: Money
    net: Money
    closing_balance: Money


class CashFlow(BaseModel):
    currency: str
    date_from: dt.date
    date_to: dt.date
    opening_balance: Money
    months: list[CashFlowMonth]
    total_inflow: Money
    total_outflow: Money
    closing_balance: Money


class LedgerLine(BaseModel):
    entry_id: int
    line_id: int
    entry_date: dt.date
    description: str
    debit: Money
    credit: Money
    balance: Money


class Ledger(BaseModel):
    account_id: int
    code: str
    currency: str
    opening_balance: Money
    lines: list[LedgerLine]
    closing_balance: Money


class Health(BaseModel):
    status: str
    commit: str
