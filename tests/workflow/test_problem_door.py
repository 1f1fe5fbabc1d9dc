"""One case per problem: the problem door on the dev server, with a real worker and PostgreSQL.

Every test has customers of its own, so its doors never meet another test's.
The worker runs a policy book of the shipped policies plus `door_quick`, the
demo policy with a 3 s feedback window, so "after the window" takes seconds.
An idle door's end is walked on a time-skipping server of this module's own.
"""

from __future__ import annotations

import asyncio
import copy
import json
import tomllib
import uuid
from datetime import timedelta
from typing import AsyncIterator

import pytest
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.policies import PolicyBook, parse_policies
from complaint_client import CommandRejected, ComplaintClient
from schemas import CaseOutcome, Roster
from schemas.door import DoorStart
from tests.support.cli import quiet_info_logs, run_cli  # noqa: F401 (quiet_info_logs: the worker logs in this process)
from tests.support.intake import intake_for
from tests.support.paths import REPO
from workflow_runner import replayer as workflow_replayer
from workflows.problem_door import IDLE_FOR, UPDATE_NAME, WORKFLOW_TYPE, door_id

ROSTER = Roster.model_validate(
    {
        "agents": [
            {"id": "door-mia", "name": "Mia Manager", "role": "manager", "team": "ops"},
            {"id": "door-sam", "name": "Sam Supervisor", "role": "supervisor", "team": "billing", "supervisor_id": "door-mia", "skills": ["billing"]},
            {"id": "door-ana", "name": "Ana Agent", "role": "agent", "team": "billing", "supervisor_id": "door-sam", "skills": ["billing"]},
        ]
    }
)
OWNER = "door-ana"
QUICK_POLICY = "door_quick"


def policy_book() -> PolicyBook:
    """The shipped policies and door_quick: the demo policy, its feedback window 3 s."""
    raw = tomllib.loads((REPO / "policies" / "policies.toml").read_text())
    quick = copy.deepcopy(raw["policies"]["demo"])
    quick["description"] = "The demo policy with a 3 s feedback window (tests of the problem door)"
    quick["feedback_window"] = "3s"
    raw["policies"][QUICK_POLICY] = quick
    return parse_policies(raw, "tests/workflow/test_problem_door.py policies")


@pytest.fixture
async def engine(dev_env, pool) -> AsyncIterator[ComplaintClient]:
    from activities.roster_store import load_roster
    from worker import build_worker

    await load_roster(pool, ROSTER)
    task_queue = f"complaints-door-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_env.client, pool, task_queue, policy_book()):
        yield ComplaintClient(dev_env.client, task_queue)


def new_customer() -> str:
    return f"door-cust-{uuid.uuid4().hex[:10]}"


def intake(customer_id: str, **overrides) -> dict:
    """An intake of customer_id's, received by OWNER (its complaint id DOOR-…)."""
    customer = {"customer_id": customer_id, "name": "Noor Haddad", "email": "noor@example.com"}
    return intake_for(OWNER, "DOOR", **{"customer": customer, **overrides})


async def close_resolved(engine: ComplaintClient, complaint_id: str, customer_id: str) -> None:
    """Accept, propose and have the customer confirm: the case closes, its feedback window opens."""
    await engine.act(complaint_id, "accept_ownership", {"actor": OWNER})
    await engine.act(complaint_id, "propose_resolution", {"actor": OWNER, "resolution": "Duplicate refunded", "root_cause": "Gateway retry"})
    state = await engine.act(complaint_id, "confirm_resolution", {"actor": f"customer:{customer_id}", "satisfied": True})
    assert state.status == "closed" and state.feedback_until is not None


async def no_case(engine: ComplaintClient, complaint_id: str) -> bool:
    try:
        await engine.client.get_workflow_handle(f"complaint-{complaint_id}").describe()
    except RPCError as error:
        return error.status == RPCStatusCode.NOT_FOUND
    return False


async def replays(engine: ComplaintClient, door_workflow_id: str) -> None:
    """The door's decisions replay from its history: the workflow is deterministic."""
    history = await engine.client.get_workflow_handle(door_workflow_id).fetch_history()
    await workflow_replayer(pydantic_data_converter).replay_workflow(history)


def test_door_ids_never_collide():
    assert door_id("cust-1", "billing") == "problem/cust-1/billing"
    # '-' and '_' may be in both parts; '/' is in neither, so the split is unambiguous.
    assert door_id("a-b", "c") != door_id("a", "b-c")
    assert door_id("a_b", "c") != door_id("a", "b_c")
    with pytest.raises(ValueError):
        door_id("a/b", "c")


async def test_two_systems_reporting_one_problem_at_once_make_one_case(engine):
    customer = new_customer()
    by_email = intake(customer, channel="email", facts={"order_id": "A-1001"})
    by_phone = intake(
        customer, channel="phone", summary="Called: the double charge is still on my card", facts={"card_last4": "4242"}
    )
    results = await asyncio.gather(engine.start(by_email), engine.start(by_phone))

    assert sorted(r.outcome for r in results) == ["joined", "opened"]
    opened = next(r for r in results if r.outcome == "opened")
    joined = next(r for r in results if r.outcome == "joined")
    case_id = opened.complaint_id
    assert (opened.created, opened.contact_id, opened.owner) == (True, case_id, OWNER)
    # The caller whose contact joined is told which case holds it, and who owns it.
    assert (joined.created, joined.complaint_id, joined.owner) == (False, case_id, OWNER)
    assert joined.contact_id != case_id and await no_case(engine, joined.contact_id)

    timeline = await engine.timeline(case_id)
    assert [e.kind for e in timeline].count("complaint_received") == 1
    contacts = [e for e in timeline if e.kind == "contact_received"]
    second = by_phone if joined.contact_id == by_phone["complaint_id"] else by_email
    assert len(contacts) == 1
    assert (contacts[0].channel, contacts[0].actor, contacts[0].data["contact_id"]) == (
        second["channel"],
        f"customer:{customer}",
        joined.contact_id,
    )

    # Never ask twice: what either contact gave is known, with the channel it came through.
    state = await engine.state(case_id)
    assert {"order_id", "card_last4"} <= set(state.facts)
    for name, value in second["facts"].items():
        assert (state.facts[name].value, state.facts[name].channel) == (value, second["channel"])
    await engine.act(case_id, "accept_ownership", {"actor": OWNER})
    with pytest.raises(CommandRejected) as refused:
        await engine.act(case_id, "request_info", {"actor": OWNER, "fields": list(second["facts"]), "question": "Which card?"})
    assert refused.value.kind == "InvalidCommand" and repr(next(iter(second["facts"].values()))) in refused.value.message

    await replays(engine, opened.door_workflow_id)


async def test_the_same_contact_twice_changes_nothing(engine):
    customer = new_customer()
    first = intake(customer)
    opened = await engine.start(first)
    again = await engine.start({**first, "summary": "A second attempt"})
    assert (opened.outcome, opened.created) == ("opened", True)
    assert (again.outcome, again.created, again.complaint_id) == ("existing", False, first["complaint_id"])

    # A retried joining contact is recorded once (its request_id is built from its complaint_id).
    other = intake(customer, channel="chat", facts={"card_last4": "4242"})
    joined = await engine.start(other)
    retried = await engine.start(other)
    assert (joined.outcome, retried.outcome) == ("joined", "joined")
    assert retried.complaint_id == joined.complaint_id == first["complaint_id"]
    kinds = [e.kind for e in await engine.timeline(first["complaint_id"])]
    assert (kinds.count("complaint_received"), kinds.count("contact_received")) == (1, 1)


async def test_a_contact_within_the_feedback_window_reopens_the_case_with_its_owner(engine):
    customer = new_customer()
    first = await engine.start(intake(customer, policy="demo"))  # feedback window 20 s
    await close_resolved(engine, first.complaint_id, customer)

    again = await engine.start(intake(customer, channel="chat", summary="Charged twice again this month", facts={"charge_date": "2026-12-01"}))
    assert (again.outcome, again.complaint_id, again.owner, again.created) == ("reopened", first.complaint_id, OWNER, False)
    state = await engine.state(first.complaint_id)
    assert (state.status, state.owner, state.reopened, state.outcome) == ("in_progress", OWNER, 1, None)
    assert state.facts["charge_date"].channel == "chat"
    kinds = [e.kind for e in await engine.timeline(first.complaint_id)]
    # The same case, closed, then reopened by the contact, which is recorded right after.
    assert kinds.count("case_reopened") == 1 and kinds.index("case_closed") < kinds.index("case_reopened")
    assert kinds[kinds.index("case_reopened") + 1] == "contact_received"


async def test_after_the_feedback_window_a_new_case_follows_the_old_one(engine):
    customer = new_customer()
    first = await engine.start(intake(customer, policy=QUICK_POLICY))
    await close_resolved(engine, first.complaint_id, customer)
    # The workflow ends when the feedback window does (3 s here).
    handle = engine.client.get_workflow_handle(first.workflow_id, result_type=CaseOutcome)
    assert (await asyncio.wait_for(handle.result(), 30)).outcome == "resolved"

    later = intake(customer, channel="web", summary="The same charge is back")
    started = await engine.start(later)
    assert (started.outcome, started.created) == ("opened", True)
    assert (started.complaint_id, started.related_case) == (later["complaint_id"], first.complaint_id)
    state = await engine.state(later["complaint_id"])
    assert state.related_case == first.complaint_id
    received = (await engine.timeline(later["complaint_id"]))[0]
    assert received.kind == "complaint_received" and received.data["related_case"] == first.complaint_id

    # The problem's contacts now go to the new case.
    next_contact = await engine.start(intake(customer, channel="phone"))
    assert (next_contact.outcome, next_contact.complaint_id) == ("joined", later["complaint_id"])
    await replays(engine, started.door_workflow_id)


async def test_a_new_door_run_finds_the_open_case_in_the_cases_table(engine):
    customer = new_customer()
    first = await engine.start(intake(customer))
    # The door's run ends (as after an idle hour): the next contact starts a run that knows nothing yet.
    await engine.client.get_workflow_handle(first.door_workflow_id).terminate("test: a fresh door run")
    joined = await engine.start(intake(customer, channel="letter"))
    assert (joined.outcome, joined.complaint_id, joined.owner) == ("joined", first.complaint_id, OWNER)


async def test_a_bad_intake_is_rejected_at_the_door_with_a_clear_error(engine):
    customer = new_customer()
    # The typed client refuses it before anything is sent.
    with pytest.raises(CommandRejected) as refused:
        await engine.start(intake(customer, severity="urgent"))
    assert refused.value.kind == "InvalidCommand" and "severity" in refused.value.message

    # Sent raw to the door (as any client could), the update is rejected and nothing starts.
    bad = intake(customer, summary="", channel="fax")
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await send_raw(engine, customer, bad)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidIntake"
    assert "summary" in cause.message and "channel" in cause.message
    assert await no_case(engine, bad["complaint_id"])

    # An intake of another customer does not belong at this door.
    stray = intake(new_customer())
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await send_raw(engine, customer, stray)
    assert failed.value.cause.type == "InvalidIntake" and "its door is 'problem/" in failed.value.cause.message
    assert await no_case(engine, stray["complaint_id"])


async def send_raw(engine: ComplaintClient, customer_id: str, payload: dict) -> object:
    door = WithStartWorkflowOperation(
        WORKFLOW_TYPE,
        DoorStart(customer_id=customer_id, category="billing"),
        id=door_id(customer_id, "billing"),
        task_queue=engine.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return await engine.client.execute_update_with_start_workflow(UPDATE_NAME, payload, start_workflow_operation=door)


async def test_the_cli_says_which_case_a_contact_joined(engine, dev_env, capsys, monkeypatch):
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", dev_env.client.namespace)
    monkeypatch.setenv("COMPLAINTS_TASK_QUEUE", engine.task_queue)
    customer = new_customer()
    first, second, direct = intake(customer), intake(customer, channel="phone"), intake(customer)

    status, out, err = await run_cli(capsys, "start", "--json", json.dumps(first))
    assert (status, out.strip(), err) == (0, f"Case {first['complaint_id']} started; owner: {OWNER}", "")
    status, out, err = await run_cli(capsys, "start", "--json", json.dumps(second))
    assert (status, out.strip(), err) == (
        0,
        f"Contact {second['complaint_id']} joined open case {first['complaint_id']}; owner: {OWNER}",
        "",
    )
    # --direct opens a case under its own id even though the problem has one.
    status, out, _ = await run_cli(capsys, "start", "--json", json.dumps(direct), "--direct")
    assert (status, out.strip()) == (0, f"Case {direct['complaint_id']} started; owner: {OWNER}")


async def test_an_idle_door_completes_and_the_next_contact_starts_a_fresh_run(clock_env, pool):
    from activities.roster_store import load_roster
    from worker import build_worker

    await load_roster(pool, ROSTER)
    task_queue = f"complaints-door-{uuid.uuid4().hex[:8]}"
    async with build_worker(clock_env.client, pool, task_queue, policy_book()):
        engine = ComplaintClient(clock_env.client, task_queue, read_your_writes=True)
        customer = new_customer()
        first = await engine.start(intake(customer))
        door = clock_env.client.get_workflow_handle(first.door_workflow_id)
        first_run = (await door.describe()).run_id

        await clock_env.sleep(IDLE_FOR + timedelta(minutes=1))
        with clock_env.auto_time_skipping_disabled():
            assert await door.result() is None  # completed: idle for IDLE_FOR

        joined = await engine.start(intake(customer, channel="phone"))
        assert (joined.outcome, joined.complaint_id) == ("joined", first.complaint_id)
        assert (await door.describe()).run_id != first_run, "a fresh run, which found the case in the cases table"
        for workflow_id in (first.workflow_id, first.door_workflow_id):
            await clock_env.client.get_workflow_handle(workflow_id).terminate("test finished")
