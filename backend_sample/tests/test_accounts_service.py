"""Chart of accounts rules at the service layer."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend_sample.errors import Conflict, DomainError, NotFound
from backend_sample.models import Account
from backend_sample.services import accounts
from backend_sample.tests.factories import Tenant, make_account


def test_create_persists(db_session: Session, tenant: Tenant) -> None:
    account = accounts.create_account(db_session, tenant.id, "1200", "Inventory", "asset")
    db_session.expire_all()
    stored = db_session.get(Account, account.id)
    assert stored is not None
    assert (stored.workspace_id, stored.code, stored.name) == (tenant.id, "1200", "Inventory")
    assert stored.is_archived is False
    assert stored.created_at is not None


def test_unknown_type(db_session: Session, tenant: Tenant) -> None:
    with pytest.raises(DomainError, match="unknown account type 'revenue'"):
        accounts.create_account(db_session, tenant.id, "4999", "x", "revenue")


@pytest.mark.parametrize("kind", ["liability", "equity", "income", "expense"])
def test_only_assets_can_be_cash(db_session: Session, tenant: Tenant, kind: str) -> None:
    with pytest.raises(DomainError, match="only asset accounts"):
        accounts.create_account(db_session, tenant.id, "9999", "x", kind, is_cash=True)


def test_duplicate_code_conflict_leaves_session_usable(db_session: Session, tenant: Tenant) -> None:
    with pytest.raises(Conflict):
        accounts.create_account(db_session, tenant.id, "1000", "Again", "asset")
    created = accounts.create_account(db_session, tenant.id, "1001", "Petty cash", "asset")
    assert created.id is not None
    codes = db_session.scalars(
        select(Account.code).where(Account.workspace_id == tenant.id, Account.code.like("100%"))
    ).all()
    assert sorted(codes) == ["1000", "1001"]


def test_get_account_of_other_workspace_is_not_found(
    db_session: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    with pytest.raises(NotFound):
        accounts.get_account(db_session, tenant.id, other_tenant["bank"].id)


def test_list_filters(db_session: Session, tenant: Tenant) -> None:
    accounts.set_archived(db_session, tenant.id, tenant["loan"].id, True)
    liabilities = accounts.list_accounts(db_session, tenant.id, "liability")
    assert [a.code for a in liabilities] == ["2000"]
    everything = accounts.list_accounts(db_session, tenant.id, "liability", include_archived=True)
    assert [a.code for a in everything] == ["2000", "2500"]


def test_list_never_mixes_workspaces(
    db_session: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    ids = {a.id for a in accounts.list_accounts(db_session, tenant.id)}
    other_ids = {a.id for a in accounts.list_accounts(db_session, other_tenant.id)}
    assert ids.isdisjoint(other_ids)
    assert len(ids) == len(other_ids) == len(tenant.accounts)


def test_update_is_cash(db_session: Session, tenant: Tenant) -> None:
    updated = accounts.update_account(db_session, tenant.id, tenant["bank"].id, is_cash=False)
    assert updated.is_cash is False


def test_update_is_cash_rejected_for_income(db_session: Session, tenant: Tenant) -> None:
    with pytest.raises(DomainError):
        accounts.update_account(db_session, tenant.id, tenant["sales"].id, is_cash=True)


def test_archive_twice_is_harmless(db_session: Session, tenant: Tenant) -> None:
    accounts.set_archived(db_session, tenant.id, tenant["loan"].id, True)
    again = accounts.set_archived(db_session, tenant.id, tenant["loan"].id, True)
    assert again.is_archived is True


@pytest.mark.parametrize("archived", ["loan", "equipment", "interest_income", "bank_fees"])
def test_require_postable_names_archived_accounts(
    db_session: Session, tenant: Tenant, archived: str
) -> None:
    accounts.set_archived(db_session, tenant.id, tenant[archived].id, True)
    with pytest.raises(DomainError, match=tenant[archived].code):
        accounts.require_postable(db_session, tenant.id, {tenant[archived].id, tenant["bank"].id})


def test_require_postable_lists_unknown_ids(db_session: Session, tenant: Tenant) -> None:
    with pytest.raises(DomainError, match="unknown account id"):
        accounts.require_postable(db_session, tenant.id, {tenant["bank"].id, 987654})


def test_require_postable_rejects_foreign_accounts(
    db_session: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    with pytest.raises(DomainError, match=str(other_tenant["bank"].id)):
        accounts.require_postable(db_session, tenant.id, {other_tenant["bank"].id})


def test_require_postable_accepts_live_accounts(db_session: Session, tenant: Tenant) -> None:
    accounts.require_postable(db_session, tenant.id, {a.id for a in tenant.accounts.values()})
    assert all(not a.is_archived for a in tenant.accounts.values())


def test_descendants(db_session: Session, tenant: Tenant) -> None:
    a = make_account(db_session, tenant, "5010", "expense", parent=tenant["rent"])
    b = make_account(db_session, tenant, "5011", "expense", parent=a)
    c = make_account(db_session, tenant, "5012", "expense", parent=a)
    assert accounts.descendant_ids(db_session, tenant["rent"].id) == {
        tenant["rent"].id,
        a.id,
        b.id,
        c.id,
    }
    assert accounts.descendant_ids(db_session, b.id) == {b.id}
