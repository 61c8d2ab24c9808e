"""Workspaces and API keys.

API keys are random secrets shown once; only their sha256 is stored, so a leaked
database dump does not leak usable credentials. Authentication is a single indexed
lookup by hash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend_sample.errors import Forbidden, Unauthorized
from backend_sample.models import ApiKey, Workspace
from backend_sample.services.common import get_owned
from backend_sample.services.currencies import require_currency

KEY_PREFIX = "bsk_"


def hash_key(raw_key: str) -> str:
    """Hex sha256 of an API key; what the database stores."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def check_admin_token(configured: str | None, given: str | None) -> None:
    """Guard the bootstrap endpoint; constant-time comparison of the admin token."""
    if not configured:
        raise Forbidden("workspace bootstrap is disabled (ADMIN_TOKEN is not set)")
    if given is None or not hmac.compare_digest(configured.encode(), given.encode()):
        raise Unauthorized("invalid admin token")


def create_workspace(
    session: Session, name: str, reporting_currency: str = "USD", key_name: str = "default"
) -> tuple[Workspace, ApiKey, str]:
    """Create a workspace with its first API key; returns the raw key once."""
    require_currency(session, reporting_currency)
    workspace = Workspace(name=name, reporting_currency=reporting_currency)
    session.add(workspace)
    session.flush()
    api_key, raw = _new_key(session, workspace.id, key_name)
    session.commit()
    return workspace, api_key, raw


def update_workspace(
    session: Session, workspace: Workspace, name: str | None, reporting_currency: str | None
) -> Workspace:
    """Rename a workspace or change the currency its reports are expressed in."""
    if reporting_currency is not None:
        require_currency(session, reporting_currency)
        workspace.reporting_currency = reporting_currency
    if name is not None:
        workspace.name = name
    session.commit()
    return workspace


def _new_key(session: Session, workspace_id: int, name: str) -> tuple[ApiKey, str]:
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(workspace_id=workspace_id, name=name, prefix=raw[:12], key_hash=hash_key(raw))
    session.add(api_key)
    session.flush()
    return api_key, raw


def create_api_key(session: Session, workspace_id: int, name: str) -> tuple[ApiKey, str]:
    """Issue an additional key for the workspace (e.g. for a CI job)."""
    api_key, raw = _new_key(session, workspace_id, name)
    session.commit()
    return api_key, raw


def list_api_keys(session: Session, workspace_id: int) -> list[ApiKey]:
    """All keys of the workspace, revoked ones included, oldest first."""
    stmt = select(ApiKey).where(ApiKey.workspace_id == workspace_id).order_by(ApiKey.id)
    return list(session.scalars(stmt))


def revoke_api_key(
    session: Session, workspace_id: int, key_id: int, current_key_id: int | None = None
) -> ApiKey:
    """Revoke a key. Revoking the key making the request is refused (lock-out guard)."""
    api_key = get_owned(session, ApiKey, workspace_id, key_id)
    if api_key.id == current_key_id:
        raise Forbidden("a key cannot revoke itself; use another key of the workspace")
    if api_key.revoked_at is None:
        api_key.revoked_at = dt.datetime.now(dt.UTC)
        session.commit()
    return api_key


def authenticate(session: Session, raw_key: str | None) -> tuple[Workspace, ApiKey]:
    """Resolve an ``X-API-Key`` header to its workspace, or raise Unauthorized."""
    if not raw_key:
        raise Unauthorized("missing X-API-Key header")
    stmt = (
        select(ApiKey, Workspace)
        .join(Workspace, Workspace.id == ApiKey.workspace_id)
        .where(ApiKey.key_hash == hash_key(raw_key))
    )
    row = session.execute(stmt).one_or_none()
    if row is None:
        raise Unauthorized("invalid API key")
    api_key, workspace = row
    if api_key.revoked_at is not None:
        raise Unauthorized("API key has been revoked")
    return workspace, api_key
