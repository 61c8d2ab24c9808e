"""Account hierarchy: same-type parents and no cycles, checked with a recursive CTE."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend_sample.errors import DomainError, NotFound
from backend_sample.models import Account
from backend_sample.services import accounts
from backend_sample.tests.factories import Tenant, make_account


def _chain(session: Session, tenant: Tenant, depth: int) -> list[Account]:
    chain = [tenant["rent"]]
    for level in range(depth):
        chain.append(make_account(session, tenant, f"59{level:02d}", "expense", parent=chain[-1]))
    return chain


@pytest.mark.parametrize("depth", [1, 2, 5, 10])
def test_ancestors_of_deep_chain(db_session: Session, tenant: Tenant, depth: int) -> None:
    chain = _chain(db_session, tenant, depth)
    assert accounts.ancestor_ids(db_session, chain[-1].id) == {a.id for a in chain}


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_cycle_through_chain_rejected(db_session: Session, tenant: Tenant, depth: int) -> None:
    chain = _chain(db_session, tenant, depth)
    with pytest.raises(DomainError, match="cycle"):
        accounts.update_account(db_session, tenant.id, chain[0].id, parent_id=chain[-1].id)
    db_session.refresh(chain[0])
    assert chain[0].parent_id is None


def test_self_parent_rejected(db_session: Session, tenant: Tenant) -> None:
    with pytest.raises(DomainError, match="cycle"):
        accounts.update_account(
            db_session, tenant.id, tenant["rent"].id, parent_id=tenant["rent"].id
        )


def test_self_parent_rejected_by_database(db_session: Session, tenant: Tenant) -> None:
    account = tenant["rent"]
    account.parent_id = account.id
    with pytest.raises(IntegrityError, match="ck_accounts_not_own_parent"):
        db_session.flush()
    db_session.rollback()


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        ("bank", "payables"),
        ("rent", "sales"),
        ("capital", "loan"),
        ("sales", "rent"),
        ("loan", "equipment"),
    ],
)
def test_reparent_to_other_type_rejected(
    db_session: Session, tenant: Tenant, child: str, parent: str
) -> None:
    with pytest.raises(DomainError, match="is of type"):
        accounts.update_account(
            db_session, tenant.id, tenant[child].id, parent_id=tenant[parent].id
        )


@pytest.mark.parametrize(
    ("child", "parent"),
    [("cash", "bank"), ("receivables", "bank"), ("salaries", "rent"), ("loan", "payables")],
)
def test_reparent_same_type_allowed(
    db_session: Session, tenant: Tenant, child: str, parent: str
) -> None:
    updated = accounts.update_account(
        db_session, tenant.id, tenant[child].id, parent_id=tenant[parent].id
    )
    assert updated.parent_id == tenant[parent].id


def test_moving_subtree_elsewhere_is_fine(db_session: Session, tenant: Tenant) -> None:
    chain = _chain(db_session, tenant, 3)
    moved = accounts.update_account(
        db_session, tenant.id, chain[2].id, parent_id=tenant["salaries"].id
    )
    assert moved.parent_id == tenant["salaries"].id
    assert accounts.ancestor_ids(db_session, chain[3].id) == {
        chain[3].id,
        chain[2].id,
        tenant["salaries"].id,
    }


def test_parent_from_other_workspace_is_not_found(
    db_session: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    with pytest.raises(NotFound):
        accounts.create_account(
            db_session, tenant.id, "5999", "x", "expense", parent_id=other_tenant["rent"].id
        )


def test_clear_parent(db_session: Session, tenant: Tenant) -> None:
    chain = _chain(db_session, tenant, 1)
    cleared = accounts.update_account(db_session, tenant.id, chain[1].id, clear_parent=True)
    assert cleared.parent_id is None
