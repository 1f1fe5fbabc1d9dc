"""A payload the worker cannot decode is refused like any bad message; its case goes on.

Sent as an attacker with frontend access would: raw Payloads through the workflow
service, no codec. Five kinds: a key id the worker does not have, an altered
ciphertext, a truncated one, an encoding no converter knows, binary/null. A signal
leaves one command_rejected event naming why, an update is refused with
InvalidCommand, a start fails the workflow as InvalidIntake; no workflow task ever
fails, the case's timers still fire and its next valid action applies. Then the
replay: a history with a signal refused for an unknown key id replays on a worker
that has since been given that key (workflows/payload_keys.py).

A real worker on its own time-skipping server, with an encrypting data converter, and real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import AsyncIterator

import pytest
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import EventType, WorkflowExecutionStatus
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from codec.encryption import EncryptionCodec, make_data_converter
from codec.keys import new_key_entry, parse_keys
from schemas import CaseState, Roster, TimelineEvent
from tests.support.case import continued_run
from tests.support.raw import raw_signal, raw_update
from tests.support.engine import Engine, engine_on, with_converter
from tests.support.intake import customer_id_for
from workflow_runner import replayer
from workflows.problem_door import UPDATE_NAME as DOOR_UPDATE, door_id

OWNER = "ud-ana"
ROSTER = Roster.model_validate(
    {
        "agents": [
            {"id": "ud-mia", "name": "Mia Manager", "role": "manager", "team": "care", "authority_limit": 5000},
            {"id": "ud-sam", "name": "Sam Supervisor", "role": "supervisor", "team": "care", "supervisor_id": "ud-mia"},
            {"id": OWNER, "name": "Ana Agent", "role": "agent", "team": "care", "supervisor_id": "ud-sam"},
        ]
    }
)
K1, K2 = new_key_entry("k1"), new_key_entry("k2")
WORKER_KEYS = parse_keys(K1)
NOTE = {"actor": OWNER, "text": "Called the bank about the double charge"}


def plain(value: object) -> Payload:
    return make_data_converter(None).payload_converter.to_payloads([value])[0]


def encrypted(value: object, keys: str = K1) -> Payload:
    return EncryptionCodec(parse_keys(keys)).encode_sync([plain(value)])[0]


def altered(payload: Payload) -> Payload:
    changed = Payload()
    changed.CopyFrom(payload)
    changed.data = payload.data[:-1] + bytes([payload.data[-1] ^ 1])
    return changed


def truncated(payload: Payload) -> Payload:
    cut = Payload()
    cut.CopyFrom(payload)
    cut.data = payload.data[:8]
    return cut


def bad_payloads(value: object) -> dict[str, tuple[Payload, str]]:
    """Each undecodable form of `value`, and what the refusal must say."""
    return {
        "unknown key id": (encrypted(value, K2), "could not be decrypted: unknown key id 'k2'"),
        "altered ciphertext": (altered(encrypted(value)), "could not be decrypted: the ciphertext does not decrypt"),
        "truncated ciphertext": (truncated(encrypted(value)), "could not be decrypted: truncated ciphertext"),
        "unknown protobuf": (
            Payload(metadata={"encoding": b"binary/protobuf", "messageType": b"no.such.Message"}, data=b"\x08\x01"),
            "the payload is not JSON (encoding 'binary/protobuf')",
        ),
        "binary/null": (Payload(metadata={"encoding": b"binary/null"}), "the payload must be a JSON object (got NoneType)"),
    }


@pytest.fixture
async def engine(clock_env, pool) -> AsyncIterator[Engine]:
    async with engine_on(
        clock_env, pool, ROSTER, converter=make_data_converter(WORKER_KEYS),
        owner=OWNER, prefix="UD", customer_prefix="cu-", policy="standard",
    ) as client:  # fmt: skip
        yield client


async def no_task_failed(engine: Engine, complaint_id: str) -> None:
    history = await engine.handle(complaint_id).fetch_history()
    failed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert not failed, f"a workflow task failed: {failed[0].workflow_task_failed_event_attributes.failure.message}"


async def status_of(engine: Engine, workflow_id: str) -> WorkflowExecutionStatus.ValueType:
    client = engine.client
    described = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id))
    )
    return described.workflow_execution_info.status


async def refused_update(engine: Engine, workflow_id: str, name: str, payload: Payload) -> BaseException:
    """The error an update with one raw payload was refused with, decoded with the worker's keys."""
    failure = await raw_update(engine.client, workflow_id, name, [payload])
    assert failure is not None, "the update was applied"
    return await make_data_converter(WORKER_KEYS).decode_failure(failure)


async def wait_for_events(engine: Engine, complaint_id: str, count: int) -> list[TimelineEvent]:
    deadline = asyncio.get_running_loop().time() + 15
    while len(timeline := await engine.timeline(complaint_id)) < count:
        assert asyncio.get_running_loop().time() < deadline, f"{len(timeline)} of {count} events"
        await asyncio.sleep(0.05)
    return timeline


async def refuses_and_goes_on(engine: Engine, clock_env, complaint_id: str) -> None:
    before = await engine.timeline(complaint_id)
    cases = bad_payloads(NOTE)
    for payload, _ in cases.values():
        await raw_signal(engine.client, f"complaint-{complaint_id}", "add_note", [payload])
    timeline = await wait_for_events(engine, complaint_id, len(before) + len(cases))
    added = timeline[len(before) :]
    assert [e.kind for e in added] == ["command_rejected"] * len(cases)
    for event, (kind, (_, says)) in zip(added, cases.items()):
        assert says in event.data["reason"], (kind, event.data["reason"])
        assert event.actor == "unknown", kind  # an unread payload names nobody
    for kind, (payload, says) in cases.items():
        error = await refused_update(engine, f"complaint-{complaint_id}", "add_note", payload)
        assert isinstance(error, ApplicationError) and error.type == "InvalidCommand", (kind, error)
        assert says in error.message, (kind, error.message)
    assert len(await engine.timeline(complaint_id)) == len(timeline)  # a refused update records nothing

    # The case goes on: the next valid action applies, and its clocks escalate on time.
    state: CaseState = await engine.act(complaint_id, "add_note", NOTE)
    assert state.event_count == len(timeline) + 1
    await clock_env.sleep(timedelta(days=3))
    kinds = [e.kind for e in await engine.timeline(complaint_id)]
    assert "escalated" in kinds[len(timeline) :]
    await no_task_failed(engine, complaint_id)
    assert await status_of(engine, f"complaint-{complaint_id}") == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING


async def test_undecodable_signals_and_updates_are_refused_and_the_case_goes_on(engine, clock_env):
    complaint_id, _ = await engine.open(severity="critical")
    await refuses_and_goes_on(engine, clock_env, complaint_id)


async def test_the_same_on_a_case_that_continued_as_new(engine, clock_env):
    complaint_id = f"UD-{uuid.uuid4().hex[:10]}"
    continued = continued_run(
        complaint_id, await clock_env.get_current_time(), owner=OWNER, supervisor="ud-sam", manager="ud-mia", key_ids=["k1"]
    )
    await engine.client.start_workflow(
        "ComplaintWorkflow", continued, id=f"complaint-{complaint_id}", task_queue=engine.task_queue
    )
    engine.started.append(complaint_id)
    await wait_for_events(engine, complaint_id, continued.continued_case.state.event_count)
    await refuses_and_goes_on(engine, clock_env, complaint_id)


@pytest.mark.parametrize("kind", list(bad_payloads({})))
async def test_an_undecodable_intake_fails_the_case_as_invalid_intake(engine, kind):
    complaint_id = f"UD-{uuid.uuid4().hex[:10]}"
    intake = {"complaint_id": complaint_id, "customer": {"customer_id": customer_id_for(complaint_id), "name": "Priya Natarajan"}, "summary": "x"}
    payload, says = bad_payloads(intake)[kind]
    client = engine.client
    await client.workflow_service.start_workflow_execution(
        StartWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_id=f"complaint-{complaint_id}",
            workflow_type=WorkflowType(name="ComplaintWorkflow"),
            task_queue=TaskQueue(name=engine.task_queue),
            input=Payloads(payloads=[payload]),
            identity="attacker",
            request_id=uuid.uuid4().hex,
        )
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await engine.handle(complaint_id).result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidIntake", cause
    assert cause.message.startswith("invalid complaint intake: ") and says.replace("the payload", "the input") in cause.message
    await no_task_failed(engine, complaint_id)


async def test_the_problem_door_refuses_an_undecodable_contact_and_stays_open(engine):
    complaint_id = f"UD-{uuid.uuid4().hex[:10]}"
    customer = {"customer_id": customer_id_for(complaint_id), "name": "Priya Natarajan"}
    intake = {"complaint_id": complaint_id, "customer": customer, "channel": "email", "category": "billing", "severity": "medium", "summary": "Charged twice", "received_by": OWNER}
    started = await engine.start(intake)
    engine.started.append(started.complaint_id)
    engine.doors.append(door := door_id(customer["customer_id"], "billing"))
    for kind, (payload, says) in bad_payloads({**intake, "complaint_id": f"{complaint_id}-2"}).items():
        error = await refused_update(engine, door, DOOR_UPDATE, payload)
        assert isinstance(error, ApplicationError) and error.type == "InvalidIntake", (kind, error)
        assert says in error.message, (kind, error.message)
    assert await status_of(engine, door) == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
    history = await engine.client.get_workflow_handle(door).fetch_history()
    assert not [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]


async def test_a_refusal_for_an_unknown_key_replays_on_a_worker_that_has_the_key_since(engine):
    """Refused for k2 by a worker holding k1 only; a worker given k2 since replays the refusal, not the action.

    contact_customer stops the first-response clock, which moves the case's timer: were the verdict
    taken from what the replaying worker can decode, the replay would apply it and fail as nondeterministic.
    """
    complaint_id, _ = await engine.open(severity="critical")
    before = await engine.timeline(complaint_id)
    later_keys = make_data_converter(parse_keys(f"{K2},{K1}"))
    contact = {"actor": OWNER, "channel": "phone", "summary": "Told the customer the refund is on its way"}
    await with_converter(engine.client, later_keys).get_workflow_handle(f"complaint-{complaint_id}").signal(
        "contact_customer", contact
    )
    [refusal] = (await wait_for_events(engine, complaint_id, len(before) + 1))[len(before) :]
    assert refusal.kind == "command_rejected" and "unknown key id 'k2'" in refusal.data["reason"]
    await engine.act(complaint_id, "add_note", NOTE)  # the case goes on: its timer moves again later
    history = await engine.handle(complaint_id).fetch_history()
    await replayer(later_keys).replay_workflow(history)
