"""FX rates per workspace and day (1 base = rate quote).

Revision ID: 0006
Revises: 0005
Create Date: 2024-03-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fx_rates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "workspace_id",
            sa.Integer,
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("base_currency", sa.String(3), sa.ForeignKey("currencies.code"), nullable=False),
        sa.Column("quote_currency", sa.String(3), sa.ForeignKey("currencies.code"), nullable=False),
        sa.Column("rate_date", sa.Date, nullable=False),
        sa.Column("rate", sa.Numeric(18, 8), nullable=False),
        sa.UniqueConstraint(
            "workspace_id", "base_currency", "quote_currency", "rate_date", name="uq_fx_rates_key"
        ),
        sa.CheckConstraint("rate > 0", name="positive"),
        sa.CheckConstraint("base_currency <> quote_currency", name="distinct_currencies"),
    )


def downgrade() -> None:
    op.drop_table("fx_rates")
