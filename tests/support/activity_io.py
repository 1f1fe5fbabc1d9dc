"""Builders for the tests of the activities: a roster member, a case's state as record_case_events
receives it, and `run`, which runs an activity method outside a worker."""

from __future__ import annotations

from datetime import datetime, timezone

from temporalio.testing import ActivityEnvironment

from schemas.intake import Customer
from schemas.roster import Agent
from schemas.state import CaseState

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def run(fn, *args):
    return ActivityEnvironment().run(fn, *args)


def member(id: str, role: str = "agent", skills=("billing",), max_open: int = 10, active: bool = True, **kw) -> Agent:
    """A roster entry: billing skills and team unless given, at most max_open open cases."""
    return Agent(
        id=id,
        name=kw.pop("name", id.title()),
        role=role,
        team=kw.pop("team", "billing"),
        skills=list(skills),
        max_open_cases=max_open,
        active=active,
        **kw,
    )


def state(event_count: int, status: str = "in_progress", promises=(), complaint_id: str = "C-1", **fields) -> CaseState:
    """A case's state after event_count events: owned by a1, customer cust-1."""
    fields.setdefault("escalation_level", 0)
    return CaseState(
        complaint_id=complaint_id,
        status=status,
        owner="a1",
        customer=Customer(customer_id="cust-1", name="Dana Whitfield"),
        channel="email",
        category="billing",
        severity="high",
        policy="standard",
        summary="Charged twice",
        received_at=T0,
        promises=list(promises),
        event_count=event_count,
        **fields,
    )
