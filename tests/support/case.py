"""Builders for cases and actions used by the unit tests of the pure rules, and `rejected`, which checks a refusal."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from schemas.actions import ACTIONS, Action
from schemas.intake import ComplaintIntake
from schemas.policy import ResolvedPolicy
from schemas.state import ContinuedCase, TimelineEvent
from schemas.roster import AgentRef, Assignment
from workflows.case import Case
from workflows.rules import Rejection

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
OWNER = "ana"
SUPERVISOR = "sam"
MANAGER = "max"
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


def agent(
    agent_id: str, role: str = "agent", supervisor_id: str | None = None, active: bool = True, **extra: Any
) -> AgentRef:
    return AgentRef(
        agent_id=agent_id, name=agent_id.title(), role=role, team="billing", supervisor_id=supervisor_id, active=active, **extra
    )


ALWAYS_OPEN = {
    "name": "always",
    "time_zone": "UTC",
    "working_hours": {day: "00:00-24:00" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
}


def policy(**overrides: Any) -> ResolvedPolicy:
    """The standard policy for a high-severity case, on a calendar that never closes."""
    data: dict[str, Any] = {
        "name": "standard",
        "description": "test policy",
        "severity": "high",
        "calendar": ALWAYS_OPEN,
        "clocks": {"acknowledge": "4 hours", "first_response": "8 hours", "customer_update": "1 day", "resolution": "5 days"},
        "confirmation_window": "7 days",
        "promise": {"warn_before": "1 hour", "level3_after": "24 hours"},
        "transfer_to_supervisor_at_level3": True,
    }
    data.update(overrides)
    return ResolvedPolicy.model_validate(data)


def advance_to(case: Case, until: datetime) -> list[TimelineEvent]:
    """Fire the case's clocks the way durable timers do: at each wake instant up to `until`."""
    fired: list[TimelineEvent] = []
    while (wake := case.next_wake()) is not None and wake <= until:
        fired += case.advance_clocks(wake)
    return fired


def assigned_case(
    *,
    terms: ResolvedPolicy | None = None,
    at: datetime = NOW,
    owner: str = OWNER,
    supervisor: str = SUPERVISOR,
    manager: str = MANAGER,
    **overrides: Any,
) -> Case:
    case = Case.receive(intake(**overrides), at)
    case.adopt_policy(terms or policy(), at)
    case.assign(
        Assignment(
            owner=agent(owner, supervisor_id=supervisor),
            supervisor=agent(supervisor, role="supervisor", supervisor_id=manager),
            manager=agent(manager, role="manager"),
            routed_by="routing",
            reason="fewest open cases among billing agents",
        ),
        at,
    )
    return case


def action(name: str, **fields: Any) -> Action:
    fields.setdefault("actor", OWNER)
    return ACTIONS[name].model_validate(fields)


def accepted_case(*, terms: ResolvedPolicy | None = None, **overrides: Any) -> Case:
    case = assigned_case(terms=terms, **overrides)
    case.apply("accept_ownership", action("accept_ownership"), NOW)
    return case


def later(minutes: int = 1) -> datetime:
    return NOW + timedelta(minutes=minutes)


def rejected(case: Case, name: str, when=NOW, **fields) -> Rejection:
    """Apply the action, which must be refused and change nothing; returns the Rejection."""
    before_state = case.state.model_dump()
    before_events = len(case.timeline)
    with pytest.raises(Rejection) as caught:
        case.apply(name, action(name, **fields), when)
    assert case.state.model_dump() == before_state, "a rejected action must change nothing"
    assert len(case.timeline) == before_events
    return caught.value


def continued_run(
    complaint_id: str, now: datetime, *, owner: str, supervisor: str, manager: str, key_ids: list[str] | None = None
) -> ContinuedCase:
    """The argument a case continued as new starts its next run with: received, routed and accepted at `now`."""
    customer = {"customer_id": f"cust-{complaint_id}", "name": "Priya Natarajan"}
    case = assigned_case(
        at=now, owner=owner, supervisor=supervisor, manager=manager, complaint_id=complaint_id, customer=customer, received_at=now
    )
    case.apply("accept_ownership", action("accept_ownership", actor=owner), now)
    return ContinuedCase(continued_case=case.carry(persisted_seq=0, runs=1), key_ids=key_ids or [])
