"""Reconciliation: statement lines point at the journal line they match; rules.

Revision ID: 0009
Revises: 0008
Create Date: 2024-06-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("statement_lines", sa.Column("matched_line_id", sa.Integer, nullable=True))
    op.add_column("statement_lines", sa.Column("match_method", sa.String(20), nullable=True))
    op.create_foreign_key(
        "fk_statement_lines_matched_line_id_journal_lines",
        "statement_lines",
        "journal_lines",
        ["matched_line_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_unique_constraint(
        "uq_statement_lines_matched_line_id", "statement_lines", ["matched_line_id"]
    )
    op.create_table(
        "reconciliation_rules",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "workspace_id",
            sa.Integer,
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("pattern", sa.String(200), nullable=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column(
            "amount_tolerance", sa.Numeric(18, 2), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("date_window_days", sa.Integer, server_default=sa.text("0"), nullable=False),
        sa.Column("priority", sa.Integer, server_default=sa.text("100"), nullable=False),
        sa.Column("is_active", sa.Boolean, server_default=sa.text("true"), nullable=False),
        sa.CheckConstraint("amount_tolerance >= 0", name="tolerance_non_negative"),
        sa.CheckConstraint("date_window_days >= 0", name="window_non_negative"),
    )
    op.create_index(
        "ix_reconciliation_rules_workspace_id", "reconciliation_rules", ["workspace_id"]
    )


def downgrade() -> None:
    op.drop_table("reconciliation_rules")
    op.drop_constraint("uq_statement_lines_matched_line_id", "statement_lines", type_="unique")
    op.drop_constraint(
        "fk_statement_lines_matched_line_id_journal_lines", "statement_lines", type_="foreignkey"
    )
    op.drop_column("statement_lines", "match_method")
    op.drop_column("statement_lines", "matched_line_id")
