"""ComplaintWorkflow on the dev server, with a real worker and real PostgreSQL.

One test per contract rule: who may, never ask twice, the closing gate,
request_id idempotency, malformed signals, and one case per complaint_id.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import AsyncIterator

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from complaint_client import CommandRejected, ComplaintClient, IncompleteTimeline
from schemas import CaseState
from tests.conftest import running_worker
from tests.support.intake import OWNER, ROSTER, customer_of, new_intake, open_case


@pytest.fixture
async def engine(dev_env, pool) -> AsyncIterator[ComplaintClient]:
    """A worker on the shared dev server: no test here needs time to jump, and the time-skipping server can
    refuse a task that cancels a timer which has just fired, which a burst of signals makes likely
    (docs/testing.md, "The time-skipping server's clock"). The cases still running are ended after the test."""
    from activities.roster_store import load_roster

    await load_roster(pool, ROSTER)
    async with running_worker(dev_env.client, pool) as client:
        yield client
        running = f'TaskQueue = "{client.task_queue}" AND ExecutionStatus = "Running"'
        async for execution in dev_env.client.list_workflows(running):
            await dev_env.client.get_workflow_handle(execution.id).terminate("test finished")


async def rejection_of(engine: ComplaintClient, complaint_id: str, name: str, payload: dict) -> CommandRejected:
    before = await engine.state(complaint_id)
    with pytest.raises(CommandRejected) as caught:
        await engine.act(complaint_id, name, payload)
    after = await engine.state(complaint_id)
    assert after == before, "nothing is recorded for a rejected update"
    return caught.value


async def test_owner_is_who_received_it_and_who_may_is_enforced(engine):
    complaint_id = await open_case(engine, accept=False)
    state = await engine.state(complaint_id)
    assert (state.owner, state.supervisor, state.status) == (OWNER, "wf-sam", "assigned")

    rejected = await rejection_of(engine, complaint_id, "accept_ownership", {"actor": "wf-bob"})
    assert rejected.kind == "NotAllowed" and OWNER in rejected.message

    await engine.send(complaint_id, "accept_ownership", {"actor": "wf-bob"})
    timeline = await engine.timeline(complaint_id)
    assert timeline[-1].kind == "command_rejected" and timeline[-1].actor == "wf-bob"
    assert "only the assigned owner" in timeline[-1].data["reason"]

    state = await engine.act(complaint_id, "accept_ownership", {"actor": OWNER})
    assert state.status == "in_progress"

    for intruder in ("wf-bob", customer_of(complaint_id), "wf-sam"):
        rejected = await rejection_of(engine, complaint_id, "contact_customer", {"actor": intruder, "channel": "phone", "summary": "hi"})
        assert rejected.kind == "NotAllowed"

    # add_note: any active roster member, checked against the database.
    await engine.act(complaint_id, "add_note", {"actor": "wf-bob", "text": "Customer called the shop too"})
    assert (await rejection_of(engine, complaint_id, "add_note", {"actor": "nobody", "text": "x"})).kind == "NotAllowed"
    assert "not active" in (await rejection_of(engine, complaint_id, "add_note", {"actor": "wf-old", "text": "x"})).message


async def test_routing_picks_an_owner_when_the_receiver_is_not_eligible(engine):
    # Only this test's roster has the invoicing skill, whatever else the session database holds.
    complaint_id = await open_case(engine, accept=False, received_by="wf-old", category="invoicing")
    state = await engine.state(complaint_id)
    assert state.owner in ("wf-ana", "wf-bob")
    assigned = next(e for e in await engine.timeline(complaint_id) if e.kind == "owner_assigned")
    assert assigned.data["routed_by"] == "routing"


async def test_never_ask_twice_names_the_known_value_channel_and_time(engine):
    complaint_id = await open_case(engine)
    rejected = await rejection_of(
        engine, complaint_id, "request_info", {"actor": OWNER, "fields": ["order_id"], "question": "What is your order number?"}
    )
    assert rejected.kind == "InvalidCommand"
    assert "'A-1001'" in rejected.message and "through email" in rejected.message
    known_since = (await engine.state(complaint_id)).facts["order_id"].at
    assert known_since.isoformat() in rejected.message

    state = await engine.act(complaint_id, "request_info", {"actor": OWNER, "fields": ["card_last4"], "question": "Which card?"})
    assert state.status == "waiting_on_customer"
    state = await engine.act(complaint_id, "provide_info", {"actor": customer_of(complaint_id), "facts": {"card_last4": "4242"}, "channel": "chat"})
    assert state.status == "in_progress" and state.facts["card_last4"].channel == "chat"
    rejected = await rejection_of(engine, complaint_id, "request_info", {"actor": OWNER, "fields": ["card_last4"], "question": "Card?"})
    assert "'4242'" in rejected.message and "through chat" in rejected.message


async def test_closing_gate_holds_the_case_in_follow_through_until_promises_are_kept(engine, dev_env):
    complaint_id = await open_case(engine)
    now = await dev_env.get_current_time()
    state = await engine.act(
        complaint_id,
        "make_promise",
        {"actor": OWNER, "description": "Refund the duplicate charge", "due_at": (now + timedelta(days=2)).isoformat()},
    )
    assert state.promises[0].promise_id == "P1" and state.next_deadline is not None
    await engine.act(complaint_id, "propose_resolution", {"actor": OWNER, "resolution": "Refund issued", "root_cause": "Payment retried by the gateway"})
    state = await engine.act(complaint_id, "confirm_resolution", {"actor": customer_of(complaint_id), "satisfied": True})
    assert state.status == "follow_through"

    state = await engine.act(complaint_id, "keep_promise", {"actor": OWNER, "promise_id": "P1", "evidence": "Refund R-88 settled"})
    assert state.status == "closed" and state.outcome == "resolved"
    outcome = await engine.outcome(complaint_id)
    assert (outcome.outcome, outcome.promises_kept, outcome.promises_total) == ("resolved", 1, 1)
    assert outcome.root_cause == "Payment retried by the gateway"


async def test_a_request_id_applies_once_through_updates_and_signals(engine):
    complaint_id = await open_case(engine)
    note = {"actor": OWNER, "text": "Checked the ledger", "request_id": "note-1"}
    first = await engine.act(complaint_id, "add_note", note)
    again = await engine.act(complaint_id, "add_note", note)
    await engine.send(complaint_id, "add_note", note)
    await engine.act(complaint_id, "add_note", {"actor": OWNER, "text": "A different note"})
    timeline = await engine.timeline(complaint_id)
    assert [e.data["text"] for e in timeline if e.kind == "note_added"] == ["Checked the ledger", "A different note"]
    assert again.event_count == first.event_count


async def test_malformed_signals_leave_one_rejection_each_and_the_case_runs_on(engine):
    complaint_id = await open_case(engine)
    handle = engine.handle(complaint_id)
    before = await engine.state(complaint_id)

    await handle.signal("keep_promise", "not an object")
    await handle.signal("add_note", {"actor": 42, "text": ""})
    await handle.signal("add_note", RawValue(Payload(metadata={"encoding": b"json/plain"}, data=b"{not json")))
    await handle.signal("add_note", RawValue(Payload(metadata={"encoding": b"binary/plain"}, data=b"\x00\xff")))
    await handle.signal("escalate_now", {"actor": OWNER})
    await handle.signal("keep_promise", {"actor": OWNER, "promise_id": "P404", "evidence": "done"})

    state = await engine.act(complaint_id, "add_note", {"actor": OWNER, "text": "still alive"})
    timeline = await engine.timeline(complaint_id)
    rejections = [e for e in timeline if e.kind == "command_rejected"]
    assert [r.data["action"] for r in rejections] == ["keep_promise", "add_note", "add_note", "add_note", "escalate_now", "keep_promise"]
    reasons = [r.data["reason"] for r in rejections]
    assert "must be a JSON object" in reasons[0]
    assert "actor" in reasons[1] and "text" in reasons[1]
    assert "not JSON" in reasons[2]
    assert "must be a JSON object (got bytes)" in reasons[3]
    assert "unknown action 'escalate_now'" in reasons[4]
    assert "no promise 'P404'" in reasons[5]
    assert state.status == before.status == "in_progress"
    assert state.event_count == before.event_count + 7


async def test_starting_the_same_complaint_twice_gives_one_case(engine):
    intake = new_intake()
    first = await engine.start(intake)
    second = await engine.start({**intake, "summary": "A second attempt"})
    assert first.created and not second.created
    state = await engine.state(intake["complaint_id"])
    assert state.summary == "Charged twice for order A-1001"
    received = [e for e in await engine.timeline(intake["complaint_id"]) if e.kind == "complaint_received"]
    assert len(received) == 1


async def failure_of(engine: ComplaintClient, intake: dict) -> ApplicationError:
    """Start a case on intake (directly) and return the ApplicationError its workflow failed with."""
    handle = await engine.client.start_workflow(
        "ComplaintWorkflow", intake, id=f"complaint-{intake['complaint_id']}", task_queue=engine.task_queue
    )
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_an_invalid_intake_fails_the_case_with_a_clear_error(engine):
    cause = await failure_of(engine, new_intake(severity="urgent", summary=""))
    assert cause.type == "InvalidIntake"
    assert "severity" in cause.message and "summary" in cause.message


async def test_a_case_opens_with_one_activity_task(engine):
    """The opening (policy, owner, the customer's other cases) is one open_case activity, then the first write."""
    complaint_id = await open_case(engine, accept=False, direct=True)
    state = await engine.act(complaint_id, "accept_ownership", {"actor": OWNER})
    assert state.policy == "standard" and state.owner == OWNER and state.customer_history is not None
    assert {"first_response", "resolution"} <= {c.name for c in state.clocks}
    history = await engine.client.get_workflow_handle(f"complaint-{complaint_id}").fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled[0] == "open_case" and set(scheduled[1:]) == {"record_case_events"}, scheduled
    markers = [
        e.marker_recorded_event_attributes.marker_name
        for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    # One code path before the first release: no workflow.patched marker; the start's identity check, recorded.
    assert markers == ["core_local_activity"], markers
    kinds = [e.kind for e in await engine.timeline(complaint_id)]
    assert kinds[:3] == ["complaint_received", "policy_applied", "owner_assigned"], kinds


async def test_an_unknown_policy_fails_the_case_as_an_invalid_intake(engine):
    cause = await failure_of(engine, new_intake(policy="gold"))
    assert cause.type == "InvalidIntake" and "unknown policy 'gold'" in cause.message


async def test_a_workflow_id_that_does_not_match_the_complaint_fails_clearly(engine):
    intake = new_intake()
    handle = await engine.client.start_workflow("ComplaintWorkflow", intake, id=f"wrong-{uuid.uuid4().hex}", task_queue=engine.task_queue)
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    assert "workflow id must be 'complaint-" in str(caught.value.cause)


async def test_state_is_returned_by_every_update(engine):
    complaint_id = await open_case(engine)
    state = await engine.act(complaint_id, "contact_customer", {"actor": OWNER, "channel": "phone", "summary": "Called to apologise"})
    assert isinstance(state, CaseState)
    assert state == await engine.state(complaint_id)


async def test_a_long_case_continues_as_new_and_keeps_everything(engine, pool):
    from temporalio.api.enums.v1 import EventType

    from workflows.complaint import MAX_ACTIONS_PER_RUN

    started = await engine.start(new_intake())
    complaint_id, first_run = started.complaint_id, started.run_id
    accepted = await engine.act(complaint_id, "accept_ownership", {"actor": OWNER})
    deadlines_before = {c.name: c.due_at for c in accepted.clocks}
    await engine.act(complaint_id, "add_note", {"actor": OWNER, "text": "before the new run", "request_id": "early-note"})
    notes = MAX_ACTIONS_PER_RUN + 50
    for number in range(notes):
        await engine.send(complaint_id, "add_note", {"actor": OWNER, "text": f"note {number}"})

    state = await engine.act(complaint_id, "contact_customer", {"actor": OWNER, "channel": "email", "summary": "Update sent"})
    first_history = await engine.client.get_workflow_handle(f"complaint-{complaint_id}", run_id=first_run).fetch_history()
    assert first_history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    # The new run holds the recent events; the typed client reads the earlier ones from PostgreSQL.
    recent = await engine.recent_timeline(complaint_id)
    assert recent[0].seq > 1 and recent[-1].seq == state.event_count
    with pytest.raises(IncompleteTimeline):
        await engine.timeline(complaint_id)
    timeline = await ComplaintClient(engine.client, engine.task_queue, database=pool).timeline(complaint_id)
    texts = [e.data["text"] for e in timeline if e.kind == "note_added"]
    assert texts == ["before the new run"] + [f"note {n}" for n in range(notes)]
    assert [e.seq for e in timeline] == list(range(1, len(timeline) + 1))
    assert state.event_count == len(timeline) and state.owner == OWNER and state.facts["order_id"].value == "A-1001"
    # The clocks and the policy crossed too: the resolution deadline is unchanged, and the
    # contact in the new run started the policy's customer_update clock.
    deadlines_after = {c.name: c.due_at for c in state.clocks}
    assert deadlines_after["resolution"] == deadlines_before["resolution"]
    assert "customer_update" in deadlines_after and "first_response" not in deadlines_after

    # The request_id memory crossed the run boundary too.
    again = await engine.act(complaint_id, "add_note", {"actor": OWNER, "text": "before the new run", "request_id": "early-note"})
    assert again.event_count == state.event_count
    stored = await pool.fetchval("SELECT count(*) FROM case_events WHERE complaint_id = $1", complaint_id)
    assert stored == len(timeline)

    await engine.act(complaint_id, "propose_resolution", {"actor": OWNER, "resolution": "Done", "root_cause": "Long story"})
    await engine.act(complaint_id, "confirm_resolution", {"actor": customer_of(complaint_id), "satisfied": True})
    assert (await engine.outcome(complaint_id)).outcome == "resolved"


async def test_signals_apply_in_the_order_they_arrive(engine):
    complaint_id = await open_case(engine)
    # The first needs a roster lookup (an activity); the second must still apply after it.
    await engine.send(complaint_id, "add_note", {"actor": "wf-bob", "text": "first"})
    await engine.send(complaint_id, "request_info", {"actor": OWNER, "fields": ["card_last4"], "question": "Which card?"})
    await engine.send(complaint_id, "provide_info", {"actor": customer_of(complaint_id), "facts": {"card_last4": "4242"}, "channel": "chat"})
    state = await engine.act(complaint_id, "add_note", {"actor": OWNER, "text": "last"})
    kinds = [e.kind for e in await engine.timeline(complaint_id) if not e.kind.startswith("clocks_")][-4:]
    assert kinds == ["note_added", "info_requested", "info_provided", "note_added"]
    assert state.status == "in_progress"


async def test_the_customer_withdraws_and_the_workflow_ends_withdrawn(engine):
    complaint_id = await open_case(engine)
    rejected = await rejection_of(engine, complaint_id, "withdraw", {"actor": OWNER, "reason": "Customer said so on the phone"})
    assert rejected.kind == "NotAllowed" and "only the customer" in rejected.message

    # The signal form runs the same rule: one command_rejected, nothing else.
    await engine.send(complaint_id, "withdraw", {"actor": "customer:someone-else", "reason": "not mine"})
    state = await engine.act(complaint_id, "withdraw", {"actor": customer_of(complaint_id), "reason": "My bank refunded it"})
    assert (state.status, state.outcome, state.clocks) == ("closed", "withdrawn", [])
    timeline = await engine.timeline(complaint_id)
    assert [e.data.get("action") for e in timeline if e.kind == "command_rejected"] == ["withdraw"]
    outcome = await engine.outcome(complaint_id)
    assert outcome.outcome == "withdrawn" and outcome.closed_at == state.closed_at


async def test_the_owner_knows_the_customer_s_earlier_cases(engine):
    customer = {"customer_id": f"cust-{uuid.uuid4().hex[:8]}", "name": "Priya Natarajan"}
    first = await open_case(engine, customer=customer)
    assert (await engine.state(first)).customer_history.earlier_cases == 0

    second = await open_case(engine, customer=customer, category="delivery")
    history = (await engine.state(second)).customer_history
    assert (history.earlier_cases, history.last_outcome) == (1, None)
    assert history.open_cases == [f"{first} (billing, in_progress)"]

    await engine.act(first, "withdraw", {"actor": f"customer:{customer['customer_id']}", "reason": "Sorted"})
    # Through the door this contact would reopen the withdrawn case (its feedback window is open): start it directly.
    third = await open_case(engine, customer=customer, direct=True)
    history = (await engine.state(third)).customer_history
    assert (history.earlier_cases, history.last_complaint_id, history.last_outcome) == (2, first, "withdrawn")
    assert history.open_cases == [f"{second} (delivery, in_progress)"]
