"""Intakes for the tests that drive a real worker, and the roster of the workflow tests.

`intake_for(owner, prefix)` builds an intake received by `owner` with a complaint id
`<prefix>-<random>` and a customer of its own: two intakes of one customer and category
would join one case (one case per problem). Each module keeps its own roster and owner
(wf-ana here, cli-ana for the CLI tests, ...) and passes them in.
"""

from __future__ import annotations

import uuid

from complaint_client import ComplaintClient
from schemas import Roster

ROSTER = Roster.model_validate(
    {
        "agents": [
            {"id": "wf-mia", "name": "Mia Manager", "role": "manager", "team": "ops", "authority_limit": 5000},
            {"id": "wf-sam", "name": "Sam Supervisor", "role": "supervisor", "team": "billing", "supervisor_id": "wf-mia", "skills": ["billing"]},
            {"id": "wf-ana", "name": "Ana Agent", "role": "agent", "team": "billing", "supervisor_id": "wf-sam", "skills": ["billing", "invoicing"]},
            {"id": "wf-bob", "name": "Bob Agent", "role": "agent", "team": "billing", "supervisor_id": "wf-sam", "skills": ["billing", "invoicing"]},
            {"id": "wf-old", "name": "Olga Former", "role": "agent", "team": "billing", "supervisor_id": "wf-sam", "active": False},
        ]
    }
)
OWNER = "wf-ana"


def customer_id_for(complaint_id: str) -> str:
    """Each test intake's own customer: intakes of one customer and category would join one case (one case per problem)."""
    return f"cust-{complaint_id}"[:64]


def customer_of(complaint_id: str) -> str:
    """The actor of the customer who reported complaint_id (through new_intake or intake_for)."""
    return f"customer:{customer_id_for(complaint_id)}"


def intake_for(owner: str, prefix: str, **overrides) -> dict:
    """An intake received by owner, its complaint id `<prefix>-…` unless given; overrides replace any field."""
    complaint_id = overrides.get("complaint_id") or f"{prefix}-{uuid.uuid4().hex[:10]}"
    intake = {
        "complaint_id": complaint_id,
        "customer": {"customer_id": customer_id_for(complaint_id), "name": "Priya Natarajan", "email": "priya@example.com"},
        "channel": "email",
        "category": "billing",
        "severity": "medium",
        "summary": "Charged twice for order A-1001",
        "received_by": owner,
        "facts": {"order_id": "A-1001"},
    }
    intake.update(overrides)
    return intake


def new_intake(**overrides) -> dict:
    """An intake of the workflow tests' roster, received by OWNER."""
    return intake_for(OWNER, "WF", **overrides)


async def open_case(engine: ComplaintClient, accept: bool = True, direct: bool = False, **overrides) -> str:
    """A new case, accepted by its owner; direct: started by its own id, not through the problem door."""
    intake = new_intake(**overrides)
    started = await (engine.start_case(intake) if direct else engine.start(intake))
    assert started.created
    if accept:
        await engine.act(started.complaint_id, "accept_ownership", {"actor": OWNER})
    return started.complaint_id
