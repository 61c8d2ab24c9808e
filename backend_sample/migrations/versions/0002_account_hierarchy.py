"""Account hierarchy: accounts get an optional parent of the same type.

Revision ID: 0002
Revises: 0001
Create Date: 2024-01-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("parent_id", sa.Integer, nullable=True))
    op.create_foreign_key(
        "fk_accounts_parent_id_accounts", "accounts", "accounts", ["parent_id"], ["id"]
    )
    op.create_index("ix_accounts_parent_id", "accounts", ["parent_id"])
    # op.f(): the name is final; the "ck" naming convention must not prefix it again.
    op.create_check_constraint(
        op.f("ck_accounts_not_own_parent"), "accounts", "parent_id IS NULL OR parent_id <> id"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_accounts_not_own_parent"), "accounts", type_="check")
    op.drop_index("ix_accounts_parent_id", table_name="accounts")
    op.drop_constraint("fk_accounts_parent_id_accounts", "accounts", type_="foreignkey")
    op.drop_column("accounts", "parent_id")
