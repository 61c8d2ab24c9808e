"""Test data builders on top of the service layer (so tests exercise real rules)."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from backend_sample.models import Account, JournalEntry, Workspace
from backend_sample.services import accounts, imports, journal
from backend_sample.services import fx as fx_service
from backend_sample.services import workspaces as workspace_service

_names = itertools.count(1)

D = Decimal


def day(value: str) -> dt.date:
    """``day("2024-03-01")`` - keeps test tables readable."""
    return dt.date.fromisoformat(value)


@dataclass
class Tenant:
    """A workspace with its raw API key and a standard chart of accounts."""

    workspace: Workspace
    key: str
    accounts: dict[str, Account]

    @property
    def id(self) -> int:
        return self.workspace.id

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}

    def __getitem__(self, name: str) -> Account:
        return self.accounts[name]


STANDARD_CHART: list[tuple[str, str, str, str, bool]] = [
    # name, code, account name, type, is_cash
    ("cash", "1000", "Cash on hand", "asset", True),
    ("bank", "1010", "Operating bank account", "asset", True),
    ("receivables", "1100", "Accounts receivable", "asset", False),
    ("equipment", "1500", "Equipment", "asset", False),
    ("payables", "2000", "Accounts payable", "liability", False),
    ("loan", "2500", "Bank loan", "liability", False),
    ("capital", "3000", "Owner's capital", "equity", False),
    ("sales", "4000", "Sales revenue", "income", False),
    ("interest_income", "4100", "Interest income", "income", False),
    ("rent", "5000", "Rent expense", "expense", False),
    ("salaries", "5100", "Salaries", "expense", False),
    ("bank_fees", "5200", "Bank fees", "expense", False),
]


def make_workspace(
    session: Session, name: str | None = None, currency: str = "USD", chart: bool = True
) -> Tenant:
    """Create a workspace + key, with the standard chart unless ``chart=False``."""
    workspace, _key, raw = workspace_service.create_workspace(
        session, name or f"Workspace {next(_names)}", currency
    )
    tenant = Tenant(workspace, raw, {})
    if chart:
        for short, code, title, kind, is_cash in STANDARD_CHART:
            tenant.accounts[short] = accounts.create_account(
                session, workspace.id, code, title, kind, is_cash=is_cash
            )
    return tenant


def make_account(
    session: Session,
    tenant: Tenant,
    code: str,
    kind: str = "asset",
    name: str | None = None,
    parent: Account | None = None,
) -> Account:
    """Add one account to a tenant's chart."""
    account = accounts.create_account(
        session,
        tenant.id,
        code,
        name or f"Account {code}",
        kind,
        parent.id if parent is not None else None,
    )
    tenant.accounts[code] = account
    return account


def make_entry(
    session: Session,
    tenant: Tenant,
    when: str | dt.date,
    lines: list[tuple[str | Account, str | int, str | int]],
    *,
    post: bool = True,
    currency: str | None = None,
    description: str = "Test entry",
    reference: str | None = None,
) -> JournalEntry:
    """Entry from ``(account, debit, credit)`` tuples; accounts by short name or object."""
    inputs = []
    for account, debit, credit in lines:
        acct = tenant[account] if isinstance(account, str) else account
        inputs.append(journal.LineInput(acct.id, D(str(debit)), D(str(credit))))
    return journal.create_entry(
        session,
        tenant.workspace,
        day(when) if isinstance(when, str) else when,
        description,
        inputs,
        currency=currency,
        reference=reference,
        post=post,
    )


def transfer(
    session: Session,
    tenant: Tenant,
    when: str,
    debit: str,
    credit: str,
    amount: str | int,
    **kwargs: object,
) -> JournalEntry:
    """Two-line posted entry: ``amount`` from ``credit`` account to ``debit`` account."""
    return make_entry(
        session,
        tenant,
        when,
        [(debit, amount, 0), (credit, 0, amount)],
        **kwargs,  # type: ignore[arg-type]
    )


def set_rate(session: Session, tenant: Tenant, base: str, quote: str, when: str, rate: str) -> None:
    """Record an FX rate for the tenant."""
    fx_service.set_rate(session, tenant.id, base, quote, day(when), D(rate))


def csv_text(*rows: str, header: str = "Date,Description,Amount,Reference,Balance") -> str:
    """A statement file from raw lines (newline-joined, trailing newline)."""
    return "\n".join((header, *rows)) + "\n"


def import_csv(session: Session, tenant: Tenant, data: str, account: str = "bank") -> object:
    """Import a statement into one of the tenant's accounts."""
    return imports.import_statement(session, tenant.id, tenant[account].id, data)
