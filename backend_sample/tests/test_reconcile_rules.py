"""Rule-based reconciliation: description pattern, counter-account, tolerance, window."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from backend_sample.errors import DomainError, NotFound
from backend_sample.services import reconcile
from backend_sample.services.imports import list_statement_lines
from backend_sample.tests.factories import Tenant, csv_text, import_csv, transfer


def _rule(
    session: Session,
    tenant: Tenant,
    pattern: str = "LANDLORD",
    account: str = "rent",
    tolerance: str = "0",
    window: int = 0,
    priority: int = 100,
):  # type: ignore[no-untyped-def]
    return reconcile.create_rule(
        session,
        tenant.id,
        f"rule {pattern}",
        pattern,
        tenant[account].id,
        Decimal(tolerance),
        window,
        priority,
    )


def _run(session: Session, tenant: Tenant) -> dict[str, int]:
    return reconcile.auto_reconcile(session, tenant.id, tenant["bank"].id)


@pytest.mark.parametrize(
    ("ledger_date", "window", "matches"),
    [
        ("2024-03-01", 0, False),
        ("2024-03-01", 2, True),
        ("2024-03-05", 2, True),
        ("2024-03-06", 2, False),
        ("2024-02-22", 10, True),
        ("2024-02-22", 9, False),
    ],
)
def test_date_window(
    db_session: Session, tenant: Tenant, ledger_date: str, window: int, matches: bool
) -> None:
    transfer(db_session, tenant, ledger_date, "rent", "bank", "800")
    import_csv(db_session, tenant, csv_text("2024-03-03,PAYMENT TO LANDLORD LTD,-800.00,,"))
    _rule(db_session, tenant, window=window)
    assert _run(db_session, tenant)["rule"] == int(matches)


@pytest.mark.parametrize(
    ("ledger_amount", "tolerance", "matches"),
    [
        ("800.00", "0", True),
        ("799.50", "0", False),
        ("799.50", "0.50", True),
        ("800.51", "0.50", False),
        ("790.00", "10", True),
    ],
)
def test_amount_tolerance(
    db_session: Session, tenant: Tenant, ledger_amount: str, tolerance: str, matches: bool
) -> None:
    transfer(db_session, tenant, "2024-03-01", "rent", "bank", ledger_amount)
    import_csv(db_session, tenant, csv_text("2024-03-02,Landlord,-800.00,,"))
    _rule(db_session, tenant, tolerance=tolerance, window=1)
    assert _run(db_session, tenant)["rule"] == int(matches)


@pytest.mark.parametrize(
    ("description", "matches"),
    [
        ("LANDLORD", True),
        ("landlord payment", True),
        ("Pay to Landlord Ltd", True),
        ("LAND LORD", False),
        ("Grocer", False),
    ],
)
def test_pattern_is_case_insensitive_substring(
    db_session: Session, tenant: Tenant, description: str, matches: bool
) -> None:
    transfer(db_session, tenant, "2024-03-01", "rent", "bank", "800")
    import_csv(db_session, tenant, csv_text(f"2024-03-02,{description},-800.00,,"))
    _rule(db_session, tenant, window=1)
    assert _run(db_session, tenant)["rule"] == int(matches)


def test_pattern_wildcards_are_literal(db_session: Session, tenant: Tenant) -> None:
    transfer(db_session, tenant, "2024-03-01", "rent", "bank", "800")
    import_csv(db_session, tenant, csv_text("2024-03-02,LANDLORD,-800.00,,"))
    _rule(db_session, tenant, pattern="L%D", window=1)
    assert _run(db_session, tenant)["rule"] == 0


def test_counter_account_must_match(db_session: Session, tenant: Tenant) -> None:
    transfer(db_session, tenant, "2024-03-01", "salaries", "bank", "800")
    import_csv(db_session, tenant, csv_text("2024-03-02,LANDLORD,-800.00,,"))
    _rule(db_session, tenant, account="rent", window=1)
    assert _run(db_session, tenant)["rule"] == 0


def test_closest_candidate_wins(db_session: Session, tenant: Tenant) -> None:
    far = transfer(db_session, tenant, "2024-02-27", "rent", "bank", "800")
    near = transfer(db_session, tenant, "2024-03-01", "rent", "bank", "800")
    import_csv(db_session, tenant, csv_text("2024-03-02,LANDLORD,-800.00,,"))
    _rule(db_session, tenant, window=5)
    _run(db_session, tenant)
    (line,) = list_statement_lines(db_session, tenant.id)
    assert line.matched_line_id == near.lines[1].id
    assert line.matched_line_id != far.lines[1].id
    assert line.match_method == "rule"


def test_exact_pass_runs_before_rules(db_session: Session, tenant: Tenant) -> None:
    transfer(db_session, tenant, "2024-03-02", "rent", "bank", "800")
    import_csv(db_session, tenant, csv_text("2024-03-02,LANDLORD,-800.00,,"))
    _rule(db_session, tenant, window=3)
    assert _run(db_session, tenant) == {"exact": 1, "rule": 0}


def test_inactive_rule_is_skipped(db_session: Session, tenant: Tenant) -> None:
    transfer(db_session, tenant, "2024-03-01", "rent", "bank", "800")
    import_csv(db_session, tenant, csv_text("2024-03-02,LANDLORD,-800.00,,"))
    rule = _rule(db_session, tenant, window=3)
    reconcile.set_rule_active(db_session, tenant.id, rule.id, False)
    assert _run(db_session, tenant)["rule"] == 0
    reconcile.set_rule_active(db_session, tenant.id, rule.id, True)
    assert _run(db_session, tenant)["rule"] == 1


def test_each_journal_line_used_once(db_session: Session, tenant: Tenant) -> None:
    transfer(db_session, tenant, "2024-03-01", "rent", "bank", "800")
    import_csv(
        db_session,
        tenant,
        csv_text("2024-03-02,LANDLORD,-800.00,A,", "2024-03-02,LANDLORD,-800.00,B,"),
    )
    _rule(db_session, tenant, window=3)
    assert _run(db_session, tenant)["rule"] == 1


def test_rules_ordered_by_priority(db_session: Session, tenant: Tenant) -> None:
    low = _rule(db_session, tenant, pattern="B", priority=50)
    high = _rule(db_session, tenant, pattern="A", priority=10)
    same = _rule(db_session, tenant, pattern="C", priority=50)
    assert [r.id for r in reconcile.list_rules(db_session, tenant.id)] == [high.id, low.id, same.id]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pattern": "   "}, "blank"),
        ({"tolerance": "-1"}, "negative"),
        ({"window": -1}, "negative"),
    ],
)
def test_rule_validation(
    db_session: Session, tenant: Tenant, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(DomainError, match=message):
        _rule(db_session, tenant, **kwargs)  # type: ignore[arg-type]


def test_rule_counter_account_must_be_own(
    db_session: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    with pytest.raises(NotFound):
        reconcile.create_rule(db_session, tenant.id, "x", "x", other_tenant["rent"].id)


def test_delete_rule_keeps_matches(db_session: Session, tenant: Tenant) -> None:
    transfer(db_session, tenant, "2024-03-01", "rent", "bank", "800")
    import_csv(db_session, tenant, csv_text("2024-03-02,LANDLORD,-800.00,,"))
    rule = _rule(db_session, tenant, window=3)
    _run(db_session, tenant)
    reconcile.delete_rule(db_session, tenant.id, rule.id)
    assert reconcile.list_rules(db_session, tenant.id) == []
    assert list_statement_lines(db_session, tenant.id)[0].match_method == "rule"


def test_other_workspaces_rule_not_found(
    db_session: Session, tenant: Tenant, other_tenant: Tenant
) -> None:
    rule = _rule(db_session, other_tenant)
    with pytest.raises(NotFound):
        reconcile.delete_rule(db_session, tenant.id, rule.id)
    with pytest.raises(NotFound):
        reconcile.set_rule_active(db_session, tenant.id, rule.id, False)
