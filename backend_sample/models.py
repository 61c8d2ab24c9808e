"""ORM models: the single source of truth the migrations must reproduce exactly.

``tests/test_migrations.py`` compares ``alembic upgrade head`` against this
metadata, so every column, index and foreign key here has a matching migration.
Money is ``NUMERIC(18, 2)`` and exchange rates ``NUMERIC(18, 8)``; never floats.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend_sample.db import Base

MONEY = Numeric(18, 2)
RATE = Numeric(18, 8)

ACCOUNT_TYPES = ("asset", "liability", "equity", "income", "expense")
ENTRY_STATUSES = ("draft", "posted", "void")


def _now() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Currency(Base):
    """ISO 4217 currency; seeded by a migration, shared by all workspaces."""

    __tablename__ = "currencies"

    code: Mapped[str] = mapped_column(String(3), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    minor_units: Mapped[int] = mapped_column(Integer, server_default=text("2"))


class Workspace(Base):
    """A tenant: every other row belongs to exactly one workspace."""

    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    reporting_currency: Mapped[str] = mapped_column(
        ForeignKey("currencies.code"), server_default=text("'USD'")
    )
    created_at: Mapped[dt.datetime] = _now()


class ApiKey(Base):
    """An API key; only the sha256 of the secret is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = _now()
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Account(Base):
    """A ledger account in the chart of accounts."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "code"),
        CheckConstraint(
            "type IN ('asset', 'liability', 'equity', 'income', 'expense')", name="type"
        ),
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    is_archived: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    is_cash: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[dt.datetime] = _now()


class JournalEntry(Base):
    """A journal entry: draft (editable), posted (immutable) or void."""

    __tablename__ = "journal_entries"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'posted', 'void')", name="status"),
        Index("ix_journal_entries_workspace_id_entry_date", "workspace_id", "entry_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    entry_date: Mapped[dt.date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(10), server_default=text("'draft'"))
    currency: Mapped[str] = mapped_column(ForeignKey("currencies.code"))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"), unique=True)
    created_at: Mapped[dt.datetime] = _now()
    posted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    voided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    lines: Mapped[list[JournalLine]] = relationship(
        back_populates="entry",
        order_by="JournalLine.line_no",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class JournalLine(Base):
    """One side of an entry: exactly one of debit/credit is positive."""

    __tablename__ = "journal_lines"
    __table_args__ = (
        CheckConstraint("debit >= 0 AND credit >= 0", name="non_negative"),
        CheckConstraint("(debit = 0) <> (credit = 0)", name="one_side"),
        UniqueConstraint("entry_id", "line_no"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    debit: Mapped[Decimal] = mapped_column(MONEY, server_default=text("0"))
    credit: Mapped[Decimal] = mapped_column(MONEY, server_default=text("0"))
    memo: Mapped[str | None] = mapped_column(Text)

    entry: Mapped[JournalEntry] = relationship(back_populates="lines")


class FxRate(Base):
    """1 ``base`` = ``rate`` ``quote`` on ``rate_date`` (valid until the next rate)."""

    __tablename__ = "fx_rates"
    __table_args__ = (
        UniqueConstraint(
            "workspace_id", "base_currency", "quote_currency", "rate_date", name="uq_fx_rates_key"
        ),
        CheckConstraint("rate > 0", name="positive"),
        CheckConstraint("base_currency <> quote_currency", name="distinct_currencies"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    base_currency: Mapped[str] = mapped_column(ForeignKey("currencies.code"))
    quote_currency: Mapped[str] = mapped_column(ForeignKey("currencies.code"))
    rate_date: Mapped[dt.date] = mapped_column(Date)
    rate: Mapped[Decimal] = mapped_column(RATE)


class ImportBatch(Base):
    """One uploaded bank statement file."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    filename: Mapped[str | None] = mapped_column(String(255))
    rows_total: Mapped[int] = mapped_column(Integer)
    rows_imported: Mapped[int] = mapped_column(Integer)
    rows_duplicate: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[dt.datetime] = _now()


class StatementLine(Base):
    """A bank statement row; ``amount`` is signed (positive = money in)."""

    __tablename__ = "statement_lines"
    __table_args__ = (
        UniqueConstraint("account_id", "row_hash"),
        Index("ix_statement_lines_account_id_line_date", "account_id", "line_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("import_batches.id", ondelete="CASCADE"), index=True
    )
    line_date: Mapped[dt.date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    reference: Mapped[str | None] = mapped_column(String(100))
    balance: Mapped[Decimal | None] = mapped_column(MONEY)
    row_hash: Mapped[str] = mapped_column(String(64))
    matched_line_id: Mapped[int | None] = mapped_column(
        ForeignKey("journal_lines.id", ondelete="SET NULL"), unique=True
    )
    match_method: Mapped[str | None] = mapped_column(String(20))


class ReconciliationRule(Base):
    """ "Description contains X -> counter-account Y", with tolerances."""

    __tablename__ = "reconciliation_rules"
    __table_args__ = (
        CheckConstraint("amount_tolerance >= 0", name="tolerance_non_negative"),
        CheckConstraint("date_window_days >= 0", name="window_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    pattern: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount_tolerance: Mapped[Decimal] = mapped_column(MONEY, server_default=text("0"))
    date_window_days: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    priority: Mapped[int] = mapped_column(Integer, server_default=text("100"))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
