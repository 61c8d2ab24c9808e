"""Chart of accounts.

Rules: codes are unique per workspace; a parent has the same type as its child and
the hierarchy has no cycles (checked with a recursive CTE, so the check costs one
query however deep the tree is); archived accounts keep their history but accept
no new postings.
"""

from __future__ import annotations

from sqlalchemy import literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend_sample.errors import Conflict, DomainError
from backend_sample.models import ACCOUNT_TYPES, Account
from backend_sample.services.common import get_owned


def get_account(session: Session, workspace_id: int, account_id: int) -> Account:
    """Load an account of this workspace or raise NotFound."""
    return get_owned(session, Account, workspace_id, account_id)


def list_accounts(
    session: Session,
    workspace_id: int,
    account_type: str | None = None,
    include_archived: bool = False,
) -> list[Account]:
    """Accounts ordered by code, optionally filtered by type."""
    stmt = select(Account).where(Account.workspace_id == workspace_id).order_by(Account.code)
    if account_type is not None:
        stmt = stmt.where(Account.type == account_type)
    if not include_archived:
        stmt = stmt.where(Account.is_archived.is_(False))
    return list(session.scalars(stmt))


def create_account(
    session: Session,
    workspace_id: int,
    code: str,
    name: str,
    account_type: str,
    parent_id: int | None = None,
    is_cash: bool = False,
) -> Account:
    """Create an account; duplicate codes are a Conflict, bad parents a DomainError."""
    if account_type not in ACCOUNT_TYPES:
        raise DomainError(f"unknown account type {account_type!r}")
    if is_cash and account_type != "asset":
        raise DomainError("only asset accounts can be cash accounts")
    if parent_id is not None:
        _check_parent(session, workspace_id, None, account_type, parent_id)
    account = Account(
        workspace_id=workspace_id,
        code=code,
        name=name,
        type=account_type,
        parent_id=parent_id,
        is_cash=is_cash,
        is_archived=False,
    )
    try:
        with session.begin_nested():  # a savepoint: the clash must not undo earlier work
            session.add(account)
    except IntegrityError:
        raise Conflict(f"account code {code!r} already exists") from None
    session.commit()
    return account


def update_account(
    session: Session,
    workspace_id: int,
    account_id: int,
    *,
    name: str | None = None,
    parent_id: int | None = None,
    clear_parent: bool = False,
    is_cash: bool | None = None,
) -> Account:
    """Rename, re-parent (cycle-checked) or flag an account as cash."""
    account = get_account(session, workspace_id, account_id)
    if name is not None:
        account.name = name
    if clear_parent:
        account.parent_id = None
    elif parent_id is not None:
        _check_parent(session, workspace_id, account.id, account.type, parent_id)
        account.parent_id = parent_id
    if is_cash is not None:
        if is_cash and account.type != "asset":
            raise DomainError("only asset accounts can be cash accounts")
        account.is_cash = is_cash
    session.commit()
    return account


def _check_parent(
    session: Session, workspace_id: int, account_id: int | None, account_type: str, parent_id: int
) -> None:
    parent = get_account(session, workspace_id, parent_id)
    if parent.type != account_type:
        raise DomainError(
            f"parent account {parent.code} is of type {parent.type}, not {account_type}"
        )
    if account_id is not None and account_id in ancestor_ids(session, parent.id):
        raise DomainError("re-parenting would create a cycle in the account hierarchy")


def ancestor_ids(session: Session, account_id: int) -> set[int]:
    """The account itself and all its ancestors, via one recursive query."""
    chain = (
        select(Account.id, Account.parent_id)
        .where(Account.id == account_id)
        .cte("chain", recursive=True)
    )
    parent = select(Account.id, Account.parent_id).join(chain, Account.id == chain.c.parent_id)
    chain = chain.union(parent)
    return set(session.scalars(select(chain.c.id)))


def descendant_ids(session: Session, account_id: int) -> set[int]:
    """The account and every account below it (for subtree queries)."""
    tree = select(Account.id).where(Account.id == account_id).cte("tree", recursive=True)
    child = select(Account.id).join(tree, Account.parent_id == tree.c.id)
    tree = tree.union(child)
    return set(session.scalars(select(tree.c.id)))


def set_archived(session: Session, workspace_id: int, account_id: int, archived: bool) -> Account:
    """Archive or restore an account; archiving a parent with live children is refused."""
    account = get_account(session, workspace_id, account_id)
    if archived:
        live_child = session.scalar(
            select(literal(1)).where(
                Account.parent_id == account.id, Account.is_archived.is_(False)
            )
        )
        if live_child:
            raise DomainError("archive the child accounts first")
    account.is_archived = archived
    session.commit()
    return account


def require_postable(session: Session, workspace_id: int, account_ids: set[int]) -> None:
    """Fail unless every account exists in the workspace and is not archived."""
    rows = session.execute(
        select(Account.id, Account.code, Account.is_archived).where(
            Account.workspace_id == workspace_id, Account.id.in_(account_ids)
        )
    ).all()
    found = {row.id for row in rows}
    missing = sorted(account_ids - found)
    if missing:
        raise DomainError(f"unknown account id(s): {', '.join(map(str, missing))}")
    archived = sorted(row.code for row in rows if row.is_archived)
    if archived:
        raise DomainError(f"archived account(s) cannot receive postings: {', '.join(archived)}")
