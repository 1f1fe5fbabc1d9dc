"""The who-may rules cannot be bypassed through signals.

Every action with a who-may rule (docs/contract.md, "Agent actions") is sent as a Signal, which
returns nothing to the sender, by an actor the rule refuses: another customer, a non-owner
agent, an agent not on the roster or not active, a supervisor approving goodwill above their
authority, a non-customer recording feedback, ... Each must leave exactly one command_rejected
event, naming the action, the actor and a reason about who may, and change nothing else.

The shared time-skipping server (no time is skipped here), a real worker and real PostgreSQL;
cases run on the standard policy, whose clocks are hours long, so no escalation interferes.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import AsyncIterator

import pytest

from schemas import CaseState, Roster, TimelineEvent
from tests.support.engine import Engine, engine_on

ROSTER = Roster.model_validate(
    {
        "agents": [
            {"id": "wm-mia", "name": "Mia Manager", "role": "manager", "team": "care", "authority_limit": 5000},
            {"id": "wm-old", "name": "Olu Retired", "role": "manager", "team": "care", "authority_limit": 5000, "active": False},
            {"id": "wm-sam", "name": "Sam Supervisor", "role": "supervisor", "team": "care", "supervisor_id": "wm-mia", "authority_limit": 300},
            {"id": "wm-ana", "name": "Ana Agent", "role": "agent", "team": "care", "supervisor_id": "wm-sam", "authority_limit": 50},
            {"id": "wm-bob", "name": "Bob Agent", "role": "agent", "team": "care", "supervisor_id": "wm-sam", "authority_limit": 50},
            {"id": "wm-gone", "name": "Gil Gone", "role": "agent", "team": "care", "supervisor_id": "wm-sam", "active": False},
        ]
    }
)
OWNER, OTHER_AGENT, SUPERVISOR, MANAGER = "wm-ana", "wm-bob", "wm-sam", "wm-mia"
NOT_ON_ROSTER, INACTIVE_AGENT, INACTIVE_MANAGER = "wm-ghost", "wm-gone", "wm-old"
OTHER_CUSTOMER = "customer:cu-someone-else"
HANDOFF = "Refund of 49.00 for the double charge is with the bank, reference RB-2231; customer wants email updates."

ONLY_OWNER = "only the case owner (wm-ana)"
NOT_THIS_CUSTOMER = f"{OTHER_CUSTOMER} is not this case's customer"


@pytest.fixture
async def engine(clock_env, pool) -> AsyncIterator[Engine]:
    async with engine_on(clock_env, pool, ROSTER, owner=OWNER, prefix="WM", customer_prefix="cu-", policy="standard") as client:
        yield client


def _without_count(state: CaseState) -> dict:
    return state.model_dump(exclude={"event_count"})


async def refused_by_signal(engine: Engine, complaint_id: str, action: str, payload: dict, why: str) -> TimelineEvent:
    """Send the action as a signal; it must add exactly one command_rejected event and change nothing else."""
    before, timeline_before = await engine.state(complaint_id), await engine.timeline(complaint_id)
    await engine.handle(complaint_id).signal(action, payload)  # raw: past the typed client's own checks
    deadline = asyncio.get_running_loop().time() + 15
    while (after := await engine.state(complaint_id)).event_count == before.event_count:
        assert asyncio.get_running_loop().time() < deadline, f"{action} by {payload['actor']}: no event recorded"
        await asyncio.sleep(0.05)
    timeline = await engine.timeline(complaint_id)
    added = timeline[len(timeline_before) :]
    label = f"{action} by {payload['actor']}"
    assert timeline[: len(timeline_before)] == timeline_before, label
    assert [e.kind for e in added] == ["command_rejected"], f"{label}: {[(e.kind, e.data) for e in added]}"
    event = added[0]
    assert (event.actor, event.data["action"]) == (payload["actor"], action), label
    assert why in event.data["reason"], f"{label}: {event.data['reason']!r} does not say {why!r}"
    assert after.event_count == before.event_count + 1, label
    assert _without_count(after) == _without_count(before), f"{label} changed the case"
    return event


async def test_no_wrong_actor_can_act_on_an_open_case_by_signal(engine, clock_env):
    cid, customer = await engine.open()
    due = (await clock_env.get_current_time()) + timedelta(days=2)
    await engine.act(cid, "make_promise", {"actor": OWNER, "description": "Refund 49.00", "due_at": due.isoformat()})
    state = await engine.act(
        cid, "offer_goodwill", {"actor": OWNER, "kind": "refund", "amount": "400", "currency": "GBP", "description": "Full refund"}
    )
    assert state.goodwill[0].status == "awaiting_approval" and state.status == "in_progress"
    later = (due + timedelta(days=1)).isoformat()

    attempts: list[tuple[str, str, dict, str]] = [
        # action, actor, payload (besides actor), what the reason says
        ("contact_customer", OTHER_AGENT, {"channel": "phone", "summary": "Called"}, ONLY_OWNER),
        ("contact_customer", SUPERVISOR, {"channel": "phone", "summary": "Called"}, ONLY_OWNER),
        ("contact_customer", customer, {"channel": "phone", "summary": "Called"}, ONLY_OWNER),
        ("add_note", NOT_ON_ROSTER, {"text": "Looks fine"}, "wm-ghost is not on the roster"),
        ("add_note", INACTIVE_AGENT, {"text": "Looks fine"}, "wm-gone is not active on the roster"),
        ("add_note", customer, {"text": "Looks fine"}, "only roster members may add note"),
        ("add_note", "system:wm-unregistered", {"text": "Looks fine"}, "system:wm-unregistered is not a registered system"),
        ("request_info", OTHER_AGENT, {"fields": ["card_last4"], "question": "Which card?"}, ONLY_OWNER),
        ("request_info", customer, {"fields": ["card_last4"], "question": "Which card?"}, ONLY_OWNER),
        ("provide_info", OTHER_CUSTOMER, {"facts": {"card_last4": "4242"}, "channel": "email"}, NOT_THIS_CUSTOMER),
        ("provide_info", OTHER_AGENT, {"facts": {"card_last4": "4242"}, "channel": "email"}, "wm-bob is neither"),
        ("make_promise", OTHER_AGENT, {"description": "Call back", "due_at": later}, ONLY_OWNER),
        ("make_promise", customer, {"description": "Call back", "due_at": later}, ONLY_OWNER),
        ("keep_promise", OTHER_AGENT, {"promise_id": "P1", "evidence": "Bank ref 77"}, ONLY_OWNER),
        ("keep_promise", SUPERVISOR, {"promise_id": "P1", "evidence": "Bank ref 77"}, ONLY_OWNER),
        (
            "renegotiate_promise",
            OTHER_AGENT,
            {"promise_id": "P1", "new_due_at": later, "reason": "Bank is slow", "customer_agreed": True},
            ONLY_OWNER,
        ),
        ("transfer_ownership", OTHER_AGENT, {"to_agent": OTHER_AGENT, "handoff_note": HANDOFF}, "wm-bob is none of them"),
        ("transfer_ownership", NOT_ON_ROSTER, {"to_agent": OTHER_AGENT, "handoff_note": HANDOFF}, "wm-ghost is none of them"),
        ("transfer_ownership", INACTIVE_MANAGER, {"to_agent": OTHER_AGENT, "handoff_note": HANDOFF}, "wm-old is none of them"),
        ("transfer_ownership", customer, {"to_agent": OTHER_AGENT, "handoff_note": HANDOFF}, "is none of them"),
        ("propose_resolution", OTHER_AGENT, {"resolution": "Refunded", "root_cause": "Double capture"}, ONLY_OWNER),
        ("propose_resolution", customer, {"resolution": "Refunded", "root_cause": "Double capture"}, ONLY_OWNER),
        ("confirm_resolution", OTHER_CUSTOMER, {"satisfied": True}, NOT_THIS_CUSTOMER),
        ("offer_goodwill", OTHER_AGENT, {"kind": "credit", "amount": "10", "description": "Credit"}, ONLY_OWNER),
        ("offer_goodwill", SUPERVISOR, {"kind": "credit", "amount": "10", "description": "Credit"}, ONLY_OWNER),
        ("approve_goodwill", SUPERVISOR, {"goodwill_id": "G1", "approve": True}, "above wm-sam's authority limit of 300.00"),
        ("approve_goodwill", OWNER, {"goodwill_id": "G1", "approve": True}, "only a supervisor or manager may decide on goodwill"),
        ("approve_goodwill", OTHER_AGENT, {"goodwill_id": "G1", "approve": True}, "only a supervisor or manager may decide on goodwill"),
        ("approve_goodwill", INACTIVE_MANAGER, {"goodwill_id": "G1", "approve": True}, "wm-old is not active on the roster"),
        ("approve_goodwill", NOT_ON_ROSTER, {"goodwill_id": "G1", "approve": True}, "only a supervisor or manager"),
        ("approve_goodwill", customer, {"goodwill_id": "G1", "approve": True}, "is not an agent"),
        ("withdraw", OTHER_CUSTOMER, {"reason": "Changed my mind"}, NOT_THIS_CUSTOMER),
        ("withdraw", OWNER, {"reason": "Changed my mind"}, "only the customer"),
        ("record_feedback", OWNER, {"score": 5}, "only the customer"),
        ("new_contact", OTHER_CUSTOMER, {"channel": "phone", "summary": "Me too"}, NOT_THIS_CUSTOMER),
        ("new_contact", NOT_ON_ROSTER, {"channel": "phone", "summary": "Me too"}, "wm-ghost is not on the roster"),
        ("new_contact", INACTIVE_AGENT, {"channel": "phone", "summary": "Me too"}, "wm-gone is not active on the roster"),
    ]
    for action, actor, payload, why in attempts:
        await refused_by_signal(engine, cid, action, {"actor": actor, **payload}, why)

    # The same signals from whoever may send them are applied (the rejections were about who, nothing else).
    await engine.handle(cid).signal("approve_goodwill", {"actor": MANAGER, "goodwill_id": "G1", "approve": True})
    await engine.handle(cid).signal("add_note", {"actor": OTHER_AGENT, "text": "Manager approved the refund"})
    for _ in range(300):  # signals apply in order: once the note is in, the approval was handled
        if (await engine.timeline(cid))[-1].kind == "note_added":
            break
        await asyncio.sleep(0.05)
    state = await engine.state(cid)
    assert (state.goodwill[0].status, state.goodwill[0].decided_by) == ("granted", MANAGER)
    kinds = [e.kind for e in await engine.timeline(cid)]
    assert kinds.count("command_rejected") == len(attempts)


async def test_only_the_assigned_owner_accepts_by_signal(engine):
    cid, customer = await engine.open(accept=False)
    for actor in (OTHER_AGENT, SUPERVISOR, MANAGER, NOT_ON_ROSTER, customer):
        await refused_by_signal(engine, cid, "accept_ownership", {"actor": actor}, "only the assigned owner (wm-ana) may accept ownership")


async def test_only_the_customer_confirms_and_gives_feedback_by_signal(engine):
    cid, customer = await engine.open()
    await engine.act(cid, "propose_resolution", {"actor": OWNER, "resolution": "Refunded 49.00", "root_cause": "Double capture"})
    for actor, why in ((OTHER_CUSTOMER, NOT_THIS_CUSTOMER), (OTHER_AGENT, "wm-bob is neither"), (SUPERVISOR, "wm-sam is neither")):
        await refused_by_signal(engine, cid, "confirm_resolution", {"actor": actor, "satisfied": True, "channel": "phone"}, why)
    state = await engine.act(cid, "confirm_resolution", {"actor": customer, "satisfied": True})
    assert state.status == "closed" and state.feedback_until is not None
    for actor, why in (
        (OWNER, "only the customer"),
        (SUPERVISOR, "only the customer"),
        ("system:survey", "system:survey is not a registered system"),
        (OTHER_CUSTOMER, NOT_THIS_CUSTOMER),
    ):
        await refused_by_signal(engine, cid, "record_feedback", {"actor": actor, "score": 1, "comment": "Awful"}, why)
    assert (await engine.state(cid)).feedback is None
