"""Reconciliation endpoints: rules, auto-match, manual match, report."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Response, status

from backend_sample import schemas
from backend_sample.api.deps import CallerDep, SessionDep
from backend_sample.services import reconcile as service

router = APIRouter(tags=["reconciliation"])


@router.get("/reconciliation-rules")
def list_rules(caller: CallerDep, session: SessionDep) -> list[schemas.RuleOut]:
    return [
        schemas.RuleOut.model_validate(r) for r in service.list_rules(session, caller.workspace_id)
    ]


@router.post("/reconciliation-rules", status_code=status.HTTP_201_CREATED)
def create_rule(
    body: schemas.RuleCreate, caller: CallerDep, session: SessionDep
) -> schemas.RuleOut:
    rule = service.create_rule(
        session,
        caller.workspace_id,
        body.name,
        body.pattern,
        body.account_id,
        body.amount_tolerance,
        body.date_window_days,
        body.priority,
    )
    return schemas.RuleOut.model_validate(rule)


@router.patch("/reconciliation-rules/{rule_id}")
def update_rule(
    rule_id: int, body: schemas.RuleUpdate, caller: CallerDep, session: SessionDep
) -> schemas.RuleOut:
    rule = service.set_rule_active(session, caller.workspace_id, rule_id, body.is_active)
    return schemas.RuleOut.model_validate(rule)


@router.delete("/reconciliation-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rule(rule_id: int, caller: CallerDep, session: SessionDep) -> Response:
    service.delete_rule(session, caller.workspace_id, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/accounts/{account_id}/reconcile")
def reconcile(account_id: int, caller: CallerDep, session: SessionDep) -> schemas.ReconcileResult:
    """Run automatic matching (exact, then rules) for a bank account."""
    return schemas.ReconcileResult(
        **service.auto_reconcile(session, caller.workspace_id, account_id)
    )


@router.get("/accounts/{account_id}/reconciliation")
def report(
    account_id: int,
    caller: CallerDep,
    session: SessionDep,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> schemas.ReconciliationReport:
    return schemas.ReconciliationReport.model_validate(
        service.reconciliation_report(session, caller.workspace_id, account_id, date_from, date_to)
    )


@router.post("/statement-lines/{line_id}/match")
def match(
    line_id: int, body: schemas.MatchIn, caller: CallerDep, session: SessionDep
) -> schemas.StatementLineOut:
    line = service.match_manually(session, caller.workspace_id, line_id, body.journal_line_id)
    return schemas.StatementLineOut.model_validate(line)


@router.delete("/statement-lines/{line_id}/match")
def unmatch(line_id: int, caller: CallerDep, session: SessionDep) -> schemas.StatementLineOut:
    line = service.unmatch(session, caller.workspace_id, line_id)
    return schemas.StatementLineOut.model_validate(line)
