"""API key revocation, and an index for statement lines by account and date.

Revision ID: 0012
Revises: 0011
Create Date: 2024-09-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_statement_lines_account_id_line_date", "statement_lines", ["account_id", "line_date"]
    )


def downgrade() -> None:
    op.drop_index("ix_statement_lines_account_id_line_date", table_name="statement_lines")
    op.drop_column("api_keys", "revoked_at")
