"""Helpers shared by several services (lookups scoped to a workspace, money)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend_sample.errors import NotFound

T = TypeVar("T")

CENT = Decimal("0.01")


def get_owned(session: Session, model: type[T], workspace_id: int, obj_id: int) -> T:
    """Load ``model`` by id *only if* it belongs to the workspace.

    Objects of other workspaces raise :class:`NotFound` exactly like ids that do not
    exist, so a caller cannot even learn that another tenant's id is taken.
    """
    stmt = select(model).where(
        model.id == obj_id,  # type: ignore[attr-defined]
        model.workspace_id == workspace_id,  # type: ignore[attr-defined]
    )
    obj = session.scalars(stmt).one_or_none()
    if obj is None:
        raise NotFound(f"{model.__name__} {obj_id} not found")
    return obj


def quantize_money(value: Decimal) -> Decimal:
    """Round to cents the way accountants do (half up), never via float."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)
