"""create tags

Revision ID: 8a4e6d0c5b21
Revises: 3f1c2a9b7d10
Create Date: 2026-11-09 16:40:02.751930

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8a4e6d0c5b21"
down_revision: str | None = "3f1c2a9b7d10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("note_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(["note_id"], ["notes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_tags_note_id"), "tags", ["note_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_tags_note_id"), table_name="tags")
    op.drop_table("tags")
