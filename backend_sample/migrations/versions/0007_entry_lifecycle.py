"""Entry lifecycle timestamps and reversals (reverses_id, one reversal per entry).

Revision ID: 0007
Revises: 0006
Create Date: 2024-04-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("journal_entries", sa.Column("reverses_id", sa.Integer, nullable=True))
    op.create_foreign_key(
        "fk_journal_entries_reverses_id_journal_entries",
        "journal_entries",
        "journal_entries",
        ["reverses_id"],
        ["id"],
    )
    op.create_unique_constraint(
        "uq_journal_entries_reverses_id", "journal_entries", ["reverses_id"]
    )
    op.add_column(
        "journal_entries", sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "journal_entries", sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("journal_entries", "voided_at")
    op.drop_column("journal_entries", "posted_at")
    op.drop_constraint("uq_journal_entries_reverses_id", "journal_entries", type_="unique")
    op.drop_constraint(
        "fk_journal_entries_reverses_id_journal_entries", "journal_entries", type_="foreignkey"
    )
    op.drop_column("journal_entries", "reverses_id")
