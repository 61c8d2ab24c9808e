"""Database-enforced bookkeeping rules.

* ``journal_entry_balanced``: a constraint trigger (DEFERRABLE INITIALLY IMMEDIATE)
  that refuses to let an entry be ``posted`` unless it has at least two lines and
  sum(debit) = sum(credit). It re-reads the entry's status when it fires, so bulk
  loaders can ``SET CONSTRAINTS journal_entry_balanced DEFERRED`` and have the
  check run at commit.
* ``journal_entry_guard``: posted entries are immutable except for being voided;
  void entries are frozen; only drafts can be deleted.
* ``journal_line_guard``: lines can only change while their entry is a draft.

Revision ID: 0004
Revises: 0003
Create Date: 2024-02-19
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION journal_entry_check_balanced() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            current_status text;
            total_debit numeric;
            total_credit numeric;
            line_count integer;
        BEGIN
            SELECT status INTO current_status FROM journal_entries WHERE id = NEW.id;
            IF current_status IS DISTINCT FROM 'posted' THEN
                RETURN NULL;
            END IF;
            SELECT coalesce(sum(debit), 0), coalesce(sum(credit), 0), count(*)
              INTO total_debit, total_credit, line_count
              FROM journal_lines WHERE entry_id = NEW.id;
            IF line_count < 2 OR total_debit <> total_credit THEN
                RAISE EXCEPTION
                    'journal entry % is not balanced: debit %, credit %, % line(s)',
                    NEW.id, total_debit, total_credit, line_count
                    USING ERRCODE = 'check_violation',
                          CONSTRAINT = 'journal_entry_balanced';
            END IF;
            RETURN NULL;
        END;
        $$
        """
    )
    op.execute(
        """
        CREATE CONSTRAINT TRIGGER journal_entry_balanced
        AFTER INSERT OR UPDATE OF status ON journal_entries
        DEFERRABLE INITIALLY IMMEDIATE
        FOR EACH ROW WHEN (NEW.status = 'posted')
        EXECUTE FUNCTION journal_entry_check_balanced()
        """
    )
    op.execute(
        """
        CREATE FUNCTION journal_entry_guard() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                IF OLD.status <> 'draft' THEN
                    RAISE EXCEPTION 'journal entry % is %; only drafts can be deleted',
                        OLD.id, OLD.status USING ERRCODE = 'restrict_violation';
                END IF;
                RETURN OLD;
            END IF;
            IF OLD.status = 'void' THEN
                RAISE EXCEPTION 'journal entry % is void and cannot change', OLD.id
                    USING ERRCODE = 'restrict_violation';
            END IF;
            IF OLD.status = 'posted' AND (
                NEW.status <> 'void'
                OR to_jsonb(NEW) - 'status' - 'voided_at'
                   IS DISTINCT FROM to_jsonb(OLD) - 'status' - 'voided_at'
            ) THEN
                RAISE EXCEPTION 'posted journal entry % is immutable; reverse it instead',
                    OLD.id USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN NEW;
        END;
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER journal_entry_guard
        BEFORE UPDATE OR DELETE ON journal_entries
        FOR EACH ROW EXECUTE FUNCTION journal_entry_guard()
        """
    )
    op.execute(
        """
        CREATE FUNCTION journal_line_guard() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            entry_status text;
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                SELECT status INTO entry_status FROM journal_entries WHERE id = OLD.entry_id;
                IF entry_status IS NOT NULL AND entry_status <> 'draft' THEN
                    RAISE EXCEPTION 'lines of % journal entry % cannot be changed',
                        entry_status, OLD.entry_id USING ERRCODE = 'restrict_violation';
                END IF;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                SELECT status INTO entry_status FROM journal_entries WHERE id = NEW.entry_id;
                IF entry_status IS NOT NULL AND entry_status <> 'draft' THEN
                    RAISE EXCEPTION 'lines of % journal entry % cannot be changed',
                        entry_status, NEW.entry_id USING ERRCODE = 'restrict_violation';
                END IF;
                RETURN NEW;
            END IF;
            RETURN OLD;
        END;
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER journal_line_guard
        BEFORE INSERT OR UPDATE OR DELETE ON journal_lines
        FOR EACH ROW EXECUTE FUNCTION journal_line_guard()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER journal_line_guard ON journal_lines")
    op.execute("DROP FUNCTION journal_line_guard()")
    op.execute("DROP TRIGGER journal_entry_guard ON journal_entries")
    op.execute("DROP FUNCTION journal_entry_guard()")
    op.execute("DROP TRIGGER journal_entry_balanced ON journal_entries")
    op.execute("DROP FUNCTION journal_entry_check_balanced()")
