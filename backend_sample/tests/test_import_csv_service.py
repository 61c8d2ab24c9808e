"""Statement import: all-or-nothing, duplicate detection, per-row errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend_sample.errors import DomainError, ImportRejected, NotFound
from backend_sample.models import ImportBatch, StatementLine
from backend_sample.services import imports
from backend_sample.services.accounts import set_archived
from backend_sample.tests.factories import Tenant, csv_text

STATEMENT = csv_text(
    "2024-03-01,Opening deposit,1000.00,DEP-1,1000.00",
    "2024-03-02,Coffee shop,-3.50,,996.50",
    "2024-03-03,Office rent,-800.00,RENT-03,196.50",
)


def _count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(StatementLine)) or 0)


def test_import_creates_batch_and_lines(db_session: Session, tenant: Tenant) -> None:
    batch = imports.import_statement(
        db_session, tenant.id, tenant["bank"].id, STATEMENT, filename="march.csv"
    )
    assert (batch.rows_total, batch.rows_imported, batch.rows_duplicate) == (3, 3, 0)
    assert batch.filename == "march.csv"
    lines = imports.list_statement_lines(db_session, tenant.id, tenant["bank"].id)
    assert [(ln.amount, ln.reference) for ln in lines] == [
        (Decimal("1000.00"), "DEP-1"),
        (Decimal("-3.50"), None),
        (Decimal("-800.00"), "RENT-03"),
    ]
    assert all(ln.batch_id == batch.id for ln in lines)
    assert all(len(ln.row_hash) == 64 for ln in lines)


def test_reimport_is_all_duplicates(db_session: Session, tenant: Tenant) -> None:
    imports.import_statement(db_session, tenant.id, tenant["bank"].id, STATEMENT)
    second = imports.import_statement(db_session, tenant.id, tenant["bank"].id, STATEMENT)
    assert (second.rows_imported, second.rows_duplicate) == (0, 3)
    assert _count(db_session) == 3


def test_overlapping_export_imports_only_new_rows(db_session: Session, tenant: Tenant) -> None:
    imports.import_statement(db_session, tenant.id, tenant["bank"].id, STATEMENT)
    overlap = csv_text(
        "2024-03-03,Office rent,-800.00,RENT-03,196.50",
        "2024-03-04,Client payment,500.00,INV-9,696.50",
    )
    batch = imports.import_statement(db_session, tenant.id, tenant["bank"].id, overlap)
    assert (batch.rows_imported, batch.rows_duplicate) == (1, 1)
    assert _count(db_session) == 4


def test_identical_rows_in_one_file_are_both_kept(db_session: Session, tenant: Tenant) -> None:
    data = csv_text("2024-03-02,Coffee shop,-3.50,,", "2024-03-02,Coffee shop,-3.50,,")
    first = imports.import_statement(db_session, tenant.id, tenant["bank"].id, data)
    assert first.rows_imported == 2
    again = imports.import_statement(db_session, tenant.id, tenant["bank"].id, data)
    assert again.rows_duplicate == 2
    assert _count(db_session) == 2


def test_third_identical_row_in_later_file_is_new(db_session: Session, tenant: Tenant) -> None:
    two = csv_text("2024-03-02,Coffee shop,-3.50,,", "2024-03-02,Coffee shop,-3.50,,")
    three = csv_text(*["2024-03-02,Coffee shop,-3.50,,"] * 3)
    imports.import_statement(db_session, tenant.id, tenant["bank"].id, two)
    batch = imports.import_statement(db_session, tenant.id, tenant["bank"].id, three)
    assert (batch.rows_imported, batch.rows_duplicate) == (1, 2)


@pytest.mark.parametrize(
    ("changed", "is_duplicate"),
    [
        ("2024-03-01,Opening deposit,1000.00,DEP-1,", True),
        ("2024-03-01,OPENING DEPOSIT (edited),1000.00,DEP-1,", True),
        ("2024-03-01,Opening deposit,1000.01,DEP-1,", False),
        ("2024-03-02,Opening deposit,1000.00,DEP-1,", False),
        ("2024-03-01,Opening deposit,1000.00,DEP-2,", False),
    ],
)
def test_duplicate_key_is_date_amount_reference(
    db_session: Session, tenant: Tenant, changed: str, is_duplicate: bool
) -> None:
    imports.import_statement(db_session, tenant.id, tenant["bank"].id, STATEMENT)
    batch = imports.import_statement(db_session, tenant.id, tenant["bank"].id, csv_text(changed))
    assert batch.rows_duplicate == int(is_duplicate)


def test_without_reference_description_is_the_key(db_session: Session, tenant: Tenant) -> None:
    imports.import_statement(
        db_session, tenant.id, tenant["bank"].id, csv_text("2024-03-02,Coffee shop,-3.50,,")
    )
    same_case_insensitive = imports.import_statement(
        db_session, tenant.id, tenant["bank"].id, csv_text("2024-03-02,COFFEE SHOP,-3.50,,")
    )
    other_shop = imports.import_statement(
        db_session, tenant.id, tenant["bank"].id, csv_text("2024-03-02,Tea house,-3.50,,")
    )
    assert same_case_insensitive.rows_duplicate == 1
    assert other_shop.rows_imported == 1


def test_same_rows_in_two_accounts_are_not_duplicates(db_session: Session, tenant: Tenant) -> None:
    imports.import_statement(db_session, tenant.id, tenant["bank"].id, STATEMENT)
    batch = imports.import_statement(db_session, tenant.id, tenant["cash"].id, STATEMENT)
    assert batch.rows_imported == 3


def test_one_bad_row_imports_nothing(db_session: Session, tenant: Tenant) -> None:
    data = csv_text(
        "2024-03-01,Fine,10.00,A,",
        "2024-03-02,Broken,12..00,B,",
        "2024-03-03,Fine too,5.00,C,",
    )
    with pytest.raises(ImportRejected) as caught:
        imports.import_statement(db_session, tenant.id, tenant["bank"].id, data)
    assert caught.value.details == [{"row": 3, "reason": "invalid amount '12..00'"}]
    assert "nothing was imported" in caught.value.message
    assert _count(db_session) == 0
    assert db_session.scalar(select(func.count()).select_from(ImportBatch)) == 0


@pytest.mark.parametrize("kind", ["liability", "equity", "income", "expense"])
def test_only_asset_accounts(db_session: Session, tenant: Tenant, kind: str) -> None:
    account = next(a for a in tenant.accounts.values() if a.type == kind)
    with pytest.raises(DomainError, match="asset"):
        imports.import_statement(db_session, tenant.id, account.id, STATEMENT)


def test_archived_account_refused(db_session: Session, tenant: Tenant) -> None:
    set_archived(db_session, tenant.id, tenant["bank"].id, True)
    with pytest.raises(DomainError, match="archived"):
        imports.import_statement(db_session, tenant.id, tenant["bank"].id, STATEMENT)


def test_foreign_account_not_found(
    db_session: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    with pytest.raises(NotFound):
        imports.import_statement(db_session, tenant.id, other_tenant["bank"].id, STATEMENT)


def test_bad_decimal_separator(db_session: Session, tenant: Tenant) -> None:
    with pytest.raises(DomainError, match="decimal_separator"):
        imports.import_statement(
            db_session, tenant.id, tenant["bank"].id, STATEMENT, decimal_separator=";"
        )


def test_batches_listed_newest_first(db_session: Session, tenant: Tenant) -> None:
    first = imports.import_statement(db_session, tenant.id, tenant["bank"].id, STATEMENT)
    second = imports.import_statement(db_session, tenant.id, tenant["cash"].id, STATEMENT)
    assert [b.id for b in imports.list_batches(db_session, tenant.id)] == [second.id, first.id]


def test_unmatched_filter(db_session: Session, tenant: Tenant) -> None:
    imports.import_statement(db_session, tenant.id, tenant["bank"].id, STATEMENT)
    assert len(imports.list_statement_lines(db_session, tenant.id, unmatched_only=True)) == 3


def test_fingerprint_is_deterministic() -> None:
    from backend_sample.services.statement_csv import parse_statement

    row = parse_statement(STATEMENT).rows[0]
    assert imports.row_fingerprint(1, row, 1) == imports.row_fingerprint(1, row, 1)
    assert imports.row_fingerprint(1, row, 1) != imports.row_fingerprint(2, row, 1)
    assert imports.row_fingerprint(1, row, 1) != imports.row_fingerprint(1, row, 2)
