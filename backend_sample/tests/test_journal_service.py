"""Journal rules at the service layer."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend_sample.errors import Conflict, DomainError, NotFound
from backend_sample.models import JournalEntry, JournalLine
from backend_sample.services import journal
from backend_sample.services.journal import LineInput
from backend_sample.tests.factories import D, Tenant, day, make_entry


def _lines(tenant: Tenant, *amounts: tuple[str, str, str]) -> list[LineInput]:
    return [LineInput(tenant[a].id, D(dr), D(cr)) for a, dr, cr in amounts]


@pytest.mark.parametrize(
    "lines",
    [
        [("bank", "100", "0"), ("sales", "0", "100")],
        [("bank", "100", "0"), ("sales", "0", "60"), ("interest_income", "0", "40")],
        [("rent", "10.10", "0"), ("salaries", "20.20", "0"), ("bank", "0", "30.30")],
        [("cash", "0.01", "0"), ("bank", "0", "0.01")],
        [("equipment", "5000", "0"), ("loan", "0", "4000"), ("bank", "0", "1000")],
    ],
)
def test_balanced_entries_post(
    db_session: Session, tenant: Tenant, lines: list[tuple[str, str, str]]
) -> None:
    entry = journal.create_entry(
        db_session, tenant.workspace, day("2024-05-01"), "ok", _lines(tenant, *lines), post=True
    )
    assert entry.status == "posted"
    totals = db_session.execute(
        select(func.sum(JournalLine.debit), func.sum(JournalLine.credit)).where(
            JournalLine.entry_id == entry.id
        )
    ).one()
    assert totals[0] == totals[1]


@pytest.mark.parametrize(
    "lines",
    [
        [("bank", "100", "0"), ("sales", "0", "99.99")],
        [("bank", "100", "0"), ("sales", "0", "100.01")],
        [("rent", "10", "0"), ("bank", "10", "0")],
        [("rent", "0", "10"), ("bank", "0", "10")],
    ],
)
def test_unbalanced_entries_rejected(
    db_session: Session, tenant: Tenant, lines: list[tuple[str, str, str]]
) -> None:
    with pytest.raises(DomainError, match="not balanced"):
        journal.create_entry(
            db_session,
            tenant.workspace,
            day("2024-05-01"),
            "bad",
            _lines(tenant, *lines),
            post=True,
        )
    assert db_session.scalar(select(func.count()).select_from(JournalEntry)) == 0


def test_three_decimal_amount_rejected(db_session: Session, tenant: Tenant) -> None:
    with pytest.raises(DomainError, match="at most 2 decimal places"):
        journal.create_entry(
            db_session,
            tenant.workspace,
            day("2024-05-01"),
            "x",
            _lines(tenant, ("bank", "1.005", "0"), ("sales", "0", "1.005")),
        )


def test_negative_amount_rejected(db_session: Session, tenant: Tenant) -> None:
    with pytest.raises(DomainError, match="must not be negative"):
        journal.create_entry(
            db_session,
            tenant.workspace,
            day("2024-05-01"),
            "x",
            _lines(tenant, ("bank", "-1", "0"), ("sales", "0", "-1")),
        )


def test_default_currency_is_reporting_currency(db_session: Session, tenant: Tenant) -> None:
    entry = make_entry(db_session, tenant, "2024-05-01", [("bank", 1, 0), ("sales", 0, 1)])
    assert entry.currency == tenant.workspace.reporting_currency == "USD"


def test_get_entry_of_other_workspace(
    db_session: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    entry = make_entry(db_session, other_tenant, "2024-05-01", [("bank", 1, 0), ("sales", 0, 1)])
    with pytest.raises(NotFound):
        journal.get_entry(db_session, tenant.id, entry.id)


def test_list_entries_sorted_by_date_then_id(db_session: Session, tenant: Tenant) -> None:
    dates = ["2024-03-01", "2024-01-01", "2024-02-01", "2024-01-01"]
    for when in dates:
        make_entry(db_session, tenant, when, [("bank", 1, 0), ("sales", 0, 1)])
    listed = journal.list_entries(db_session, tenant.id)
    assert [e.entry_date.isoformat() for e in listed] == sorted(dates)
    same_day = [e.id for e in listed if e.entry_date == dt.date(2024, 1, 1)]
    assert same_day == sorted(same_day)


def test_update_lines_validates(db_session: Session, tenant: Tenant) -> None:
    draft = make_entry(db_session, tenant, "2024-05-01", [("bank", 1, 0)], post=False)
    with pytest.raises(DomainError, match="exactly one"):
        journal.update_entry(
            db_session, tenant.id, draft.id, lines=_lines(tenant, ("bank", "1", "1"))
        )


def test_update_then_post(db_session: Session, tenant: Tenant) -> None:
    draft = make_entry(db_session, tenant, "2024-05-01", [("bank", 1, 0)], post=False)
    journal.update_entry(
        db_session,
        tenant.id,
        draft.id,
        lines=_lines(tenant, ("bank", "7", "0"), ("sales", "0", "7")),
    )
    posted = journal.post_entry(db_session, tenant.id, draft.id)
    assert posted.status == "posted"
    assert [ln.debit for ln in posted.lines] == [Decimal("7.00"), Decimal("0.00")]


def _attempt(session: Session, tenant: Tenant, entry_id: int, action: str) -> None:
    if action == "edit":
        journal.update_entry(session, tenant.id, entry_id, description="x")
    elif action == "delete":
        journal.delete_entry(session, tenant.id, entry_id)
    else:
        journal.post_entry(session, tenant.id, entry_id)


@pytest.mark.parametrize("action", ["edit", "delete", "post"])
def test_posted_entry_rejects_changes(db_session: Session, tenant: Tenant, action: str) -> None:
    entry = make_entry(db_session, tenant, "2024-05-01", [("bank", 1, 0), ("sales", 0, 1)])
    with pytest.raises(Conflict, match="posted"):
        _attempt(db_session, tenant, entry.id, action)


@pytest.mark.parametrize("action", ["edit", "delete", "post"])
def test_void_entry_rejects_changes(db_session: Session, tenant: Tenant, action: str) -> None:
    entry = make_entry(db_session, tenant, "2024-05-01", [("bank", 1, 0), ("sales", 0, 1)])
    journal.void_entry(db_session, tenant.id, entry.id)
    with pytest.raises(Conflict, match="void"):
        _attempt(db_session, tenant, entry.id, action)


def test_memo_is_kept(db_session: Session, tenant: Tenant) -> None:
    entry = journal.create_entry(
        db_session,
        tenant.workspace,
        day("2024-05-01"),
        "memo",
        [
            LineInput(tenant["bank"].id, D("3"), D("0"), memo="deposit slip 7"),
            LineInput(tenant["sales"].id, D("0"), D("3")),
        ],
    )
    db_session.expire_all()
    reloaded = journal.get_entry(db_session, tenant.id, entry.id)
    assert [ln.memo for ln in reloaded.lines] == ["deposit slip 7", None]


def test_check_balanced_accepts_orm_lines(db_session: Session, tenant: Tenant) -> None:
    entry = make_entry(db_session, tenant, "2024-05-01", [("bank", 5, 0), ("sales", 0, 5)])
    journal.check_balanced(entry.lines)
    with pytest.raises(DomainError):
        journal.check_balanced(entry.lines[:1])
