"""Exact-match reconciliation: same date, same signed amount, one-to-one."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from backend_sample.services import journal, reconcile
from backend_sample.services.imports import list_statement_lines
from backend_sample.tests.factories import Tenant, csv_text, import_csv, make_entry, transfer


def _lines(session: Session, tenant: Tenant):  # type: ignore[no-untyped-def]
    return list_statement_lines(session, tenant.id, tenant["bank"].id)


def test_deposit_matches_debit_on_bank(db_session: Session, tenant: Tenant) -> None:
    entry = transfer(db_session, tenant, "2024-03-01", "bank", "sales", "100.00")
    import_csv(db_session, tenant, csv_text("2024-03-01,Customer,100.00,,"))
    assert reconcile.auto_reconcile(db_session, tenant.id, tenant["bank"].id) == {
        "exact": 1,
        "rule": 0,
    }
    (line,) = _lines(db_session, tenant)
    assert line.matched_line_id == entry.lines[0].id
    assert line.match_method == "exact"


def test_payment_matches_credit_on_bank(db_session: Session, tenant: Tenant) -> None:
    entry = transfer(db_session, tenant, "2024-03-05", "rent", "bank", "800.00")
    import_csv(db_session, tenant, csv_text("2024-03-05,Landlord,-800.00,,"))
    reconcile.auto_reconcile(db_session, tenant.id, tenant["bank"].id)
    assert _lines(db_session, tenant)[0].matched_line_id == entry.lines[1].id


@pytest.mark.parametrize(
    ("statement_row", "matches"),
    [
        ("2024-03-01,x,100.00,,", True),
        ("2024-03-02,x,100.00,,", False),
        ("2024-03-01,x,100.01,,", False),
        ("2024-03-01,x,-100.00,,", False),
    ],
)
def test_exact_needs_same_date_and_amount(
    db_session: Session, tenant: Tenant, statement_row: str, matches: bool
) -> None:
    transfer(db_session, tenant, "2024-03-01", "bank", "sales", "100.00")
    import_csv(db_session, tenant, csv_text(statement_row))
    assert reconcile.auto_reconcile(db_session, tenant.id, tenant["bank"].id)["exact"] == int(
        matches
    )


def test_identical_amounts_pair_one_to_one(db_session: Session, tenant: Tenant) -> None:
    entries = [transfer(db_session, tenant, "2024-03-01", "bank", "sales", "50") for _ in range(3)]
    import_csv(db_session, tenant, csv_text(*["2024-03-01,Sale,50.00,,"] * 2))
    assert reconcile.auto_reconcile(db_session, tenant.id, tenant["bank"].id)["exact"] == 2
    matched = {ln.matched_line_id for ln in _lines(db_session, tenant)}
    assert matched == {entries[0].lines[0].id, entries[1].lines[0].id}
    report = reconcile.reconciliation_report(db_session, tenant.id, tenant["bank"].id)
    assert [j["entry_id"] for j in report["unmatched_journal_lines"]] == [entries[2].id]  # type: ignore[index]


def test_drafts_and_void_entries_are_not_matched(db_session: Session, tenant: Tenant) -> None:
    make_entry(db_session, tenant, "2024-03-01", [("bank", 10, 0), ("sales", 0, 10)], post=False)
    voided = transfer(db_session, tenant, "2024-03-01", "bank", "sales", "10")
    journal.void_entry(db_session, tenant.id, voided.id)
    import_csv(db_session, tenant, csv_text("2024-03-01,x,10.00,,"))
    assert reconcile.auto_reconcile(db_session, tenant.id, tenant["bank"].id)["exact"] == 0


def test_lines_on_other_accounts_are_ignored(db_session: Session, tenant: Tenant) -> None:
    transfer(db_session, tenant, "2024-03-01", "cash", "sales", "10")
    import_csv(db_session, tenant, csv_text("2024-03-01,x,10.00,,"))
    assert reconcile.auto_reconcile(db_session, tenant.id, tenant["bank"].id)["exact"] == 0


def test_running_twice_matches_nothing_new(db_session: Session, tenant: Tenant) -> None:
    transfer(db_session, tenant, "2024-03-01", "bank", "sales", "10")
    import_csv(db_session, tenant, csv_text("2024-03-01,x,10.00,,"))
    reconcile.auto_reconcile(db_session, tenant.id, tenant["bank"].id)
    assert reconcile.auto_reconcile(db_session, tenant.id, tenant["bank"].id) == {
        "exact": 0,
        "rule": 0,
    }


def test_other_workspace_lines_never_match(
    db_session: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    transfer(db_session, other_tenant, "2024-03-01", "bank", "sales", "10")
    import_csv(db_session, tenant, csv_text("2024-03-01,x,10.00,,"))
    assert reconcile.auto_reconcile(db_session, tenant.id, tenant["bank"].id)["exact"] == 0


def test_report_lists_both_sides(db_session: Session, tenant: Tenant) -> None:
    transfer(db_session, tenant, "2024-03-01", "bank", "sales", "100")
    only_ledger = transfer(
        db_session, tenant, "2024-03-02", "rent", "bank", "30", description="Cheque 17"
    )
    import_csv(
        db_session,
        tenant,
        csv_text("2024-03-01,Customer,100.00,,", "2024-03-03,Bank fee,-2.00,FEE1,"),
    )
    reconcile.auto_reconcile(db_session, tenant.id, tenant["bank"].id)
    report = reconcile.reconciliation_report(db_session, tenant.id, tenant["bank"].id)
    assert report["matched"] == 1
    assert [
        (s["description"], s["amount"], s["reference"]) for s in report["unmatched_statement_lines"]
    ] == [  # type: ignore[attr-defined]
        ("Bank fee", Decimal("-2.00"), "FEE1")
    ]
    assert [
        (j["entry_id"], j["amount"], j["description"]) for j in report["unmatched_journal_lines"]
    ] == [  # type: ignore[attr-defined]
        (only_ledger.id, Decimal("-30.00"), "Cheque 17")
    ]
    assert report["unmatched_statement_total"] == Decimal("-2.00")
    assert report["unmatched_journal_total"] == Decimal("-30.00")


@pytest.mark.parametrize(
    ("date_from", "date_to", "statement", "journal_count"),
    [
        ("2024-03-01", "2024-03-31", 2, 2),
        ("2024-03-10", None, 1, 1),
        (None, "2024-03-09", 1, 1),
        ("2024-04-01", "2024-04-30", 0, 0),
    ],
)
def test_report_date_window(
    db_session: Session,
    tenant: Tenant,
    date_from: str | None,
    date_to: str | None,
    statement: int,
    journal_count: int,
) -> None:
    import datetime as dt

    transfer(db_session, tenant, "2024-03-05", "rent", "bank", "1")
    transfer(db_session, tenant, "2024-03-15", "rent", "bank", "2")
    import_csv(db_session, tenant, csv_text("2024-03-06,a,5.00,,", "2024-03-16,b,6.00,,"))
    report = reconcile.reconciliation_report(
        db_session,
        tenant.id,
        tenant["bank"].id,
        dt.date.fromisoformat(date_from) if date_from else None,
        dt.date.fromisoformat(date_to) if date_to else None,
    )
    assert len(report["unmatched_statement_lines"]) == statement  # type: ignore[arg-type]
    assert len(report["unmatched_journal_lines"]) == journal_count  # type: ignore[arg-type]
