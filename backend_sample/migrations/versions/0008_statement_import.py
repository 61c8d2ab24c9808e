"""Bank statement import: import batches and statement lines with row fingerprints.

Revision ID: 0008
Revises: 0007
Create Date: 2024-05-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_batches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "workspace_id",
            sa.Integer,
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("filename", sa.String(255)),
        sa.Column("rows_total", sa.Integer, nullable=False),
        sa.Column("rows_imported", sa.Integer, nullable=False),
        sa.Column("rows_duplicate", sa.Integer, nullable=False),
        sa.Column(
            "imported_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
    )
    op.create_index("ix_import_batches_account_id", "import_batches", ["account_id"])
    op.create_table(
        "statement_lines",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "workspace_id",
            sa.Integer,
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column(
            "batch_id",
            sa.Integer,
            sa.ForeignKey("import_batches.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("line_date", sa.Date, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("amount", sa.Numeric(18, 2), nullable=False),
        sa.Column("reference", sa.String(100)),
        sa.Column("balance", sa.Numeric(18, 2)),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("account_id", "row_hash"),
    )
    op.create_index("ix_statement_lines_batch_id", "statement_lines", ["batch_id"])


def downgrade() -> None:
    op.drop_table("statement_lines")
    op.drop_table("import_batches")
