"""Transfers, goodwill, external promises and feedback through real updates and signals.

A time-skipping server of this module's own (its tests move time forward), a
real worker and real PostgreSQL; the cases use the demo policy, whose
transfer-acceptance and goodwill-approval clocks run 15 s and whose feedback
window is 20 s.
"""

from __future__ import annotations

from datetime import timedelta
from typing import AsyncIterator

import pytest

from complaint_client import CommandRejected
from schemas import Roster
from tests.support.engine import Engine, engine_on

ROSTER = Roster.model_validate(
    {
        "agents": [
            {"id": "ow-mia", "name": "Mia Manager", "role": "manager", "team": "care", "authority_limit": 5000},
            {"id": "ow-sam", "name": "Sam Supervisor", "role": "supervisor", "team": "care", "supervisor_id": "ow-mia", "authority_limit": 300},
            {"id": "ow-ana", "name": "Ana Agent", "role": "agent", "team": "care", "supervisor_id": "ow-sam", "authority_limit": 50},
            {"id": "ow-bob", "name": "Bob Agent", "role": "agent", "team": "care", "supervisor_id": "ow-sam", "authority_limit": 50},
            {"id": "ow-cy", "name": "Cy Agent", "role": "agent", "team": "care", "supervisor_id": "ow-sam"},
            {"id": "ow-dee", "name": "Dee Agent", "role": "agent", "team": "care", "supervisor_id": "ow-sam"},
            {"id": "ow-full", "name": "Fay Full", "role": "agent", "team": "care", "supervisor_id": "ow-sam", "max_open_cases": 0},
            {"id": "ow-gone", "name": "Gil Gone", "role": "agent", "team": "care", "supervisor_id": "ow-sam", "active": False},
        ]
    }
)
OWNER, SUPERVISOR, MANAGER = "ow-ana", "ow-sam", "ow-mia"
NOTE = "Charged twice for order A-1001; refund promised, customer prefers email, card ending 4242 confirmed."


@pytest.fixture
async def engine(clock_env, pool) -> AsyncIterator[Engine]:
    """Cases opened by their own id (Engine.open) on the demo policy, ended after the test."""
    async with engine_on(
        clock_env, pool, ROSTER, read_your_writes=True, owner=OWNER, prefix="OW", customer_prefix="c-", policy="demo"
    ) as client:
        yield client


async def rejected(engine: Engine, complaint_id: str, name: str, payload: dict) -> CommandRejected:
    before = await engine.state(complaint_id)
    with pytest.raises(CommandRejected) as caught:
        await engine.act(complaint_id, name, payload)
    assert await engine.state(complaint_id) == before, "a rejected update records nothing"
    return caught.value


async def notifications(pool, complaint_id: str, clock: str) -> list[tuple[int, str, str]]:
    rows = await pool.fetch(
        "SELECT level, recipient, recipient_role FROM notifications WHERE complaint_id = $1 AND clock = $2 ORDER BY level",
        complaint_id,
        clock,
    )
    return [(row["level"], row["recipient"], row["recipient_role"]) for row in rows]


def transfer(to: str, by: str = OWNER, note: str = NOTE) -> dict:
    return {"actor": by, "to_agent": to, "handoff_note": note}


# --- transfers ---------------------------------------------------------------


async def test_transfers_to_self_unknown_inactive_or_full_agents_are_rejected_saying_why(engine):
    cid, _ = await engine.open()
    for to, why in [
        (OWNER, "already owns"),
        ("ow-nobody", "not on the roster"),
        ("ow-gone", "not active"),
        ("ow-full", "max_open_cases 0"),
    ]:
        error = await rejected(engine, cid, "transfer_ownership", transfer(to))
        assert error.kind == "InvalidCommand" and why in error.message, (to, error.message)
    error = await rejected(engine, cid, "transfer_ownership", transfer("ow-bob", note="see notes"))
    assert error.kind == "InvalidCommand" and "handoff note" in error.message
    error = await rejected(engine, cid, "transfer_ownership", transfer("ow-bob", by="ow-cy"))
    assert error.kind == "NotAllowed" and "supervisor (ow-sam)" in error.message

    state = await engine.act(cid, "transfer_ownership", transfer("ow-bob"))
    assert (state.owner, state.pending_owner, state.handoff.note) == (OWNER, "ow-bob", NOTE)
    error = await rejected(engine, cid, "transfer_ownership", transfer("ow-cy", by=SUPERVISOR))
    assert "already pending" in error.message


async def test_a_chain_of_three_transfers_keeps_every_promise_and_fact(engine, clock_env):
    cid, customer = await engine.open()
    due = (await clock_env.get_current_time()) + timedelta(hours=2)
    await engine.act(cid, "make_promise", {"actor": OWNER, "description": "Refund 49.00", "due_at": due.isoformat()})
    await engine.act(cid, "provide_info", {"actor": customer, "facts": {"card_last4": "4242"}, "channel": "phone"})
    chain = [(OWNER, "ow-bob"), (SUPERVISOR, "ow-cy"), (MANAGER, "ow-dee")]  # the owner, their supervisor, a manager
    for by, to in chain:
        await engine.act(cid, "transfer_ownership", transfer(to, by=by))
        state = await engine.act(cid, "accept_ownership", {"actor": to})
        assert state.owner == to and state.handoff.note == NOTE and state.handoff.accepted_at is not None
    assert state.transfers == 3
    assert [(p.promise_id, p.owed_by, p.status) for p in state.promises] == [("P1", "ow-dee", "open")]
    assert {name: fact.value for name, fact in state.facts.items()} == {"order_id": "A-1001", "card_last4": "4242"}
    error = await rejected(engine, cid, "request_info", {"actor": "ow-dee", "fields": ["card_last4"], "question": "Card?"})
    assert "already known" in error.message
    timeline = await engine.timeline(cid)
    assert [e.data["to_owner"] for e in timeline if e.kind == "ownership_transferred"] == ["ow-bob", "ow-cy", "ow-dee"]


async def test_a_pending_transfer_nobody_accepts_escalates_and_the_old_owner_stays_accountable(engine, clock_env, pool):
    cid, _ = await engine.open()
    await engine.act(cid, "transfer_ownership", transfer("ow-bob"))
    await clock_env.sleep(timedelta(seconds=16))
    state = await engine.state(cid)
    assert (state.owner, state.pending_owner) == (OWNER, "ow-bob")
    acceptance = next(c for c in state.clocks if c.name == "acceptance")
    assert acceptance.breached and acceptance.level == 2
    assert await notifications(pool, cid, "acceptance") == [(1, OWNER, "owner"), (2, SUPERVISOR, "supervisor")]
    # The old owner still works the case meanwhile.
    await engine.act(cid, "contact_customer", {"actor": OWNER, "channel": "phone", "summary": "Bob will call you back"})
    state = await engine.act(cid, "accept_ownership", {"actor": "ow-bob"})
    assert state.owner == "ow-bob" and all(c.name != "acceptance" for c in state.clocks)
    cleared = [e for e in await engine.timeline(cid) if e.kind == "escalation_cleared" and e.data["clock"] == "acceptance"]
    assert len(cleared) == 1


async def test_a_transfer_by_signal_is_applied_or_rejected_in_the_timeline(engine):
    cid, _ = await engine.open()
    await engine.send(cid, "transfer_ownership", transfer("ow-gone"))
    await engine.send(cid, "transfer_ownership", transfer("ow-bob"))
    await engine.act(cid, "add_note", {"actor": OWNER, "text": "after the signals"})  # the signals are applied before this
    timeline = await engine.timeline(cid)
    rejected_signal = next(e for e in timeline if e.kind == "command_rejected")
    assert rejected_signal.data["action"] == "transfer_ownership" and "not active" in rejected_signal.data["reason"]
    assert (await engine.state(cid)).pending_owner == "ow-bob"


# --- goodwill ------------------------------------------------------------------


async def test_goodwill_above_the_limit_cannot_close_the_case_until_approved(engine, pool):
    cid, _ = await engine.open()
    state = await engine.act(
        cid,
        "offer_goodwill",
        {
            "actor": OWNER,
            "kind": "refund",
            "amount": "400.00",
            "currency": "GBP",
            "description": "Full refund: the model is discontinued and cannot be replaced",
            "settles_case": True,
            "root_cause": "Supplier discontinued the model",
        },
    )
    assert state.goodwill[0].status == "awaiting_approval" and state.status == "in_progress"
    error = await rejected(engine, cid, "approve_goodwill", {"actor": "ow-bob", "goodwill_id": "G1", "approve": True})
    assert error.kind == "NotAllowed"
    error = await rejected(engine, cid, "approve_goodwill", {"actor": SUPERVISOR, "goodwill_id": "G1", "approve": True})
    assert error.kind == "NotAllowed" and "authority limit of 300.00" in error.message
    state = await engine.act(cid, "approve_goodwill", {"actor": MANAGER, "goodwill_id": "G1", "approve": True})
    assert (state.status, state.outcome, state.goodwill[0].decided_by) == ("closed", "goodwill", MANAGER)
    outcome = await engine.outcome(cid)
    assert outcome.outcome == "goodwill" and outcome.root_cause == "Supplier discontinued the model"
    row = await pool.fetchrow("SELECT outcome, root_cause FROM cases WHERE complaint_id = $1", cid)
    assert dict(row) == {"outcome": "goodwill", "root_cause": "Supplier discontinued the model"}


async def test_goodwill_within_the_limit_is_granted_at_once_and_a_pending_one_escalates(engine, clock_env, pool):
    cid, _ = await engine.open()
    state = await engine.act(cid, "offer_goodwill", {"actor": OWNER, "kind": "credit", "amount": "20", "description": "Account credit"})
    assert state.goodwill[0].status == "granted"
    await engine.send(cid, "offer_goodwill", {"actor": OWNER, "kind": "voucher", "amount": "120", "description": "Voucher"})
    await clock_env.sleep(timedelta(seconds=16))
    assert await notifications(pool, cid, "goodwill:G2") == [(1, OWNER, "owner"), (2, SUPERVISOR, "supervisor")]


# --- other parties' promises ----------------------------------------------------


async def test_an_external_party_s_promise_escalates_to_our_people_never_the_customer(engine, clock_env, pool):
    cid, customer = await engine.open()
    due = (await clock_env.get_current_time()) + timedelta(seconds=30)
    state = await engine.act(
        cid,
        "make_promise",
        {"actor": OWNER, "description": "The bank reverses the duplicate charge", "due_at": due.isoformat(), "owed_by": "external:first-bank"},
    )
    assert state.promises[0].owed_by == "external:first-bank"
    await clock_env.sleep(timedelta(seconds=31))
    rows = await notifications(pool, cid, "promise:P1")
    assert rows[:2] == [(1, OWNER, "owner"), (2, SUPERVISOR, "supervisor")]
    assert all(not recipient.startswith("customer:") for _, recipient, _ in rows)
    state = await engine.state(cid)
    assert state.owner == OWNER and state.promises[0].status == "overdue"
    overdue = next(e for e in await engine.timeline(cid) if e.kind == "promise_overdue")
    assert overdue.data["owed_by"] == "external:first-bank"
    # The owner keeps it once the bank has done its part.
    state = await engine.act(cid, "keep_promise", {"actor": OWNER, "promise_id": "P1", "evidence": "Bank ref 77"})
    assert state.promises[0].status == "kept"


# --- feedback ------------------------------------------------------------------


async def close_resolved(engine: Engine, cid: str, customer: str) -> None:
    await engine.act(cid, "propose_resolution", {"actor": OWNER, "resolution": "Refunded 49.00", "root_cause": "Duplicate capture"})
    state = await engine.act(cid, "confirm_resolution", {"actor": customer, "satisfied": True})
    assert state.status == "closed" and state.feedback_until is not None


async def test_a_low_score_within_the_window_notifies_the_supervisor(engine, pool):
    cid, customer = await engine.open()
    await close_resolved(engine, cid, customer)
    error = await rejected(engine, cid, "record_feedback", {"actor": OWNER, "score": 5})
    assert error.kind == "NotAllowed"
    # Out of range, sent past the client's own validation: one command_rejected, nothing else.
    await engine.handle(cid).signal("record_feedback", {"actor": customer, "score": 9})
    state = await engine.act(cid, "record_feedback", {"actor": customer, "score": 2, "comment": "Took three calls"})
    assert state.feedback.score == 2
    assert (await engine.outcome(cid)).satisfaction == 2
    assert await notifications(pool, cid, "feedback") == [(2, SUPERVISOR, "supervisor")]
    kinds = [e.kind for e in await engine.timeline(cid)]
    assert kinds.count("command_rejected") == 1 and kinds.count("feedback_recorded") == 1


async def test_feedback_after_the_window_is_rejected(engine, clock_env):
    cid, customer = await engine.open()
    await close_resolved(engine, cid, customer)
    await clock_env.sleep(timedelta(seconds=21))
    with pytest.raises(CommandRejected) as caught:
        await engine.act(cid, "record_feedback", {"actor": customer, "score": 5})
    assert "feedback window" in caught.value.message
    handle = engine.client.get_workflow_handle(f"complaint-{cid}")
    with clock_env.auto_time_skipping_disabled():
        result = await handle.result()
    assert result["outcome"] == "resolved" and result["satisfaction"] is None
