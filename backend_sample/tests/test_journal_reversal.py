"""Reversal entries: the mirror image of a posted entry, linked to it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend_sample.errors import Conflict, DomainError
from backend_sample.services import journal, reports
from backend_sample.tests.factories import Tenant, day, make_entry


@pytest.fixture
def original(db_session: Session, tenant: Tenant):  # type: ignore[no-untyped-def]
    return make_entry(
        db_session,
        tenant,
        "2024-04-10",
        [("rent", 900, 0), ("salaries", 100, 0), ("bank", 0, 1000)],
        reference="APR-RENT",
        description="April costs",
    )


def test_reversal_mirrors_lines(db_session: Session, tenant: Tenant, original) -> None:  # type: ignore[no-untyped-def]
    reversal = journal.reverse_entry(db_session, tenant.workspace, original.id)
    assert reversal.status == "posted"
    assert reversal.reverses_id == original.id
    assert reversal.reference == "APR-RENT"
    assert reversal.description == f"Reversal of #{original.id}: April costs"
    assert [(ln.account_id, ln.debit, ln.credit) for ln in reversal.lines] == [
        (ln.account_id, ln.credit, ln.debit) for ln in original.lines
    ]


def test_reversal_nets_to_zero_in_trial_balance(
    db_session: Session,
    tenant: Tenant,
    original,  # type: ignore[no-untyped-def]
) -> None:
    journal.reverse_entry(db_session, tenant.workspace, original.id, day("2024-04-30"))
    tb = reports.trial_balance(db_session, tenant.workspace, None, day("2024-12-31"))
    assert all(row["net_debit"] == row["net_credit"] == 0 for row in tb["accounts"])  # type: ignore[attr-defined]


def test_reversal_dated_later_shows_in_later_period(
    db_session: Session,
    tenant: Tenant,
    original,  # type: ignore[no-untyped-def]
) -> None:
    journal.reverse_entry(db_session, tenant.workspace, original.id, day("2024-05-02"))
    april = reports.income_statement(
        db_session, tenant.workspace, day("2024-04-01"), day("2024-04-30")
    )
    may = reports.income_statement(
        db_session, tenant.workspace, day("2024-05-01"), day("2024-05-31")
    )
    assert april["total_expenses"] == 1000
    assert may["total_expenses"] == -1000


def test_reversal_cannot_predate_original(db_session: Session, tenant: Tenant, original) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError, match="before the entry"):
        journal.reverse_entry(db_session, tenant.workspace, original.id, day("2024-04-09"))


def test_second_reversal_refused(db_session: Session, tenant: Tenant, original) -> None:  # type: ignore[no-untyped-def]
    first = journal.reverse_entry(db_session, tenant.workspace, original.id)
    with pytest.raises(Conflict, match=f"already reversed by entry {first.id}"):
        journal.reverse_entry(db_session, tenant.workspace, original.id)


def test_reversal_of_reversal_refused(db_session: Session, tenant: Tenant, original) -> None:  # type: ignore[no-untyped-def]
    reversal = journal.reverse_entry(db_session, tenant.workspace, original.id)
    with pytest.raises(Conflict, match="cannot itself be reversed"):
        journal.reverse_entry(db_session, tenant.workspace, reversal.id)


@pytest.mark.parametrize("state", ["draft", "void"])
def test_only_posted_entries_reversible(db_session: Session, tenant: Tenant, state: str) -> None:
    entry = make_entry(
        db_session, tenant, "2024-04-10", [("bank", 1, 0), ("sales", 0, 1)], post=False
    )
    if state == "void":
        journal.void_entry(db_session, tenant.id, entry.id)
    with pytest.raises(Conflict, match=f"this one is {state}"):
        journal.reverse_entry(db_session, tenant.workspace, entry.id)


def test_reversal_refused_when_account_archived(
    db_session: Session,
    tenant: Tenant,
    original,  # type: ignore[no-untyped-def]
) -> None:
    from backend_sample.services.accounts import set_archived

    set_archived(db_session, tenant.id, tenant["salaries"].id, True)
    with pytest.raises(DomainError, match="5100"):
        journal.reverse_entry(db_session, tenant.workspace, original.id)


def test_voiding_reversed_original_refused(db_session: Session, tenant: Tenant, original) -> None:  # type: ignore[no-untyped-def]
    reversal = journal.reverse_entry(db_session, tenant.workspace, original.id)
    with pytest.raises(Conflict, match=f"reversed by entry {reversal.id}"):
        journal.void_entry(db_session, tenant.id, original.id)
    journal.void_entry(db_session, tenant.id, reversal.id)
    assert journal.void_entry(db_session, tenant.id, original.id).status == "void"


def test_reverse_via_api(api: TestClient, tenant: Tenant, original) -> None:  # type: ignore[no-untyped-def]
    response = api.post(
        f"/journal-entries/{original.id}/reverse", json={"entry_date": "2024-04-30"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["reverses_id"] == original.id
    assert body["entry_date"] == "2024-04-30"
    assert body["lines"][2]["debit"] == "1000.00"


def test_reverse_via_api_without_body_uses_original_date(
    api: TestClient,
    tenant: Tenant,
    original,  # type: ignore[no-untyped-def]
) -> None:
    body = api.post(f"/journal-entries/{original.id}/reverse").json()
    assert body["entry_date"] == "2024-04-10"


def test_reverse_via_api_twice_conflict(api: TestClient, original) -> None:  # type: ignore[no-untyped-def]
    api.post(f"/journal-entries/{original.id}/reverse")
    second = api.post(f"/journal-entries/{original.id}/reverse")
    assert second.status_code == 409
