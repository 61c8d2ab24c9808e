"""Cash accounts flag, feeding the monthly cash-flow report.

Backfill: accounts whose code starts with 10 (the conventional cash range) are cash.

Revision ID: 0011
Revises: 0010
Create Date: 2024-08-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "accounts",
        sa.Column("is_cash", sa.Boolean, server_default=sa.text("false"), nullable=False),
    )
    op.execute("UPDATE accounts SET is_cash = true WHERE type = 'asset' AND code LIKE '10%'")


def downgrade() -> None:
    op.drop_column("accounts", "is_cash")
