"""Currencies: reference table (seeded), workspace reporting currency, entry currency.

Existing workspaces and entries were all in US dollars, hence the 'USD' backfill.

Revision ID: 0005
Revises: 0004
Create Date: 2024-03-11
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CURRENCIES = [
    ("AUD", "Australian Dollar", 2),
    ("CAD", "Canadian Dollar", 2),
    ("CHF", "Swiss Franc", 2),
    ("CZK", "Czech Koruna", 2),
    ("DKK", "Danish Krone", 2),
    ("EUR", "Euro", 2),
    ("GBP", "Pound Sterling", 2),
    ("JPY", "Yen", 0),
    ("NOK", "Norwegian Krone", 2),
    ("PLN", "Zloty", 2),
    ("SEK", "Swedish Krona", 2),
    ("USD", "US Dollar", 2),
]


def upgrade() -> None:
    currencies = op.create_table(
        "currencies",
        sa.Column("code", sa.String(3), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("minor_units", sa.Integer, server_default=sa.text("2"), nullable=False),
    )
    op.bulk_insert(
        currencies,
        [{"code": c, "name": n, "minor_units": m} for c, n, m in CURRENCIES],
    )
    op.add_column(
        "workspaces",
        sa.Column(
            "reporting_currency",
            sa.String(3),
            server_default=sa.text("'USD'"),
            nullable=False,
        ),
    )
    op.create_foreign_key(
        "fk_workspaces_reporting_currency_currencies",
        "workspaces",
        "currencies",
        ["reporting_currency"],
        ["code"],
    )
    # ADD COLUMN with a default backfills without firing the immutability trigger.
    op.add_column(
        "journal_entries",
        sa.Column("currency", sa.String(3), server_default=sa.text("'USD'"), nullable=False),
    )
    op.alter_column("journal_entries", "currency", server_default=None)
    op.create_foreign_key(
        "fk_journal_entries_currency_currencies",
        "journal_entries",
        "currencies",
        ["currency"],
        ["code"],
    )


def downgrade() -> None:
    op.drop_constraint(
        "fk_journal_entries_currency_currencies", "journal_entries", type_="foreignkey"
    )
    op.drop_column("journal_entries", "currency")
    op.drop_constraint(
        "fk_workspaces_reporting_currency_currencies", "workspaces", type_="foreignkey"
    )
    op.drop_column("workspaces", "reporting_currency")
    op.drop_table("currencies")
