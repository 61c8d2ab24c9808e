"""Indexes for report queries (entries by workspace+date, lines by account).

Added once the first customers had enough entries for the reports to get slow.

Revision ID: 0003
Revises: 0002
Create Date: 2024-02-05
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_journal_entries_workspace_id_entry_date",
        "journal_entries",
        ["workspace_id", "entry_date"],
    )
    op.create_index("ix_journal_lines_account_id", "journal_lines", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_journal_lines_account_id", table_name="journal_lines")
    op.drop_index("ix_journal_entries_workspace_id_entry_date", table_name="journal_entries")
