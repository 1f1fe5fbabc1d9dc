"""Builders for cases and actions used by the unit tests of the pure rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from schemas.actions import ACTIONS, Action
from schemas.intake import ComplaintIntake
from schemas.roster import AgentRef, Assignment
from workflows.case import Case

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
OWNER = "ana"
SUPERVISOR = "sam"
CUSTOMER = "customer:cust-1"


def intake(**overrides: Any) -> ComplaintIntake:
    data: dict[str, Any] = {
        "complaint_id": "C-1",
        "customer": {"customer_id": "cust-1", "name": "Dana Whitfield", "email": "dana@example.com"},
        "channel": "email",
        "category": "billing",
        "severity": "high",
        "summary": "Charged twice for the same order",
        "details": "Two identical charges of 49.00 appeared on my card.",
        "facts": {"order_id": "A-1001"},
    }
    data.update(overrides)
    return ComplaintIntake.model_validate(data)


def agent(agent_id: str, role: str = "agent", supervisor_id: str | None = None, active: bool = True) -> AgentRef:
    return AgentRef(agent_id=agent_id, name=agent_id.title(), role=role, team="billing", supervisor_id=supervisor_id, active=active)


def assigned_case(**overrides: Any) -> Case:
    case = Case.receive(intake(**overrides), NOW)
    case.assign(
        Assignment(
            owner=agent(OWNER, supervisor_id=SUPERVISOR),
            supervisor=agent(SUPERVISOR, role="supervisor"),
            routed_by="routing",
            reason="fewest open cases among billing agents",
        ),
        NOW,
    )
    return case


def action(name: str, **fields: Any) -> Action:
    fields.setdefault("actor", OWNER)
    return ACTIONS[name].model_validate(fields)


def accepted_case(**overrides: Any) -> Case:
    case = assigned_case(**overrides)
    case.apply("accept_ownership", action("accept_ownership"), NOW)
    return case


def later(minutes: int = 1) -> datetime:
    return NOW + timedelta(minutes=minutes)
