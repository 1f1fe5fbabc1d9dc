"""Signed actors (COMPLAINTS_IDENTITY=signed): who acts is proven by an actor assertion, not claimed.

A real worker in signed mode trusting one issuer; a legitimate client signs with that issuer's key
(identity.interceptors.SigningInterceptor). The attacks come raw through the workflow service, as
anyone with frontend access could send them: no assertion, an untrusted key, a forged signature, an
expired assertion, one issued for another case, another action, another payload or another request,
and one for another actor: the forged manager granting goodwill and the forged customer withdrawing.
An update is refused NotAllowed, a signal leaves one command_rejected event, a start fails as
InvalidIntake, naming the check; nothing else changes, and every history replays with a replayer
that trusts no key at all (a signal's and a start's verdicts are in the history).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator

import pytest
from temporalio.api.common.v1 import Header, Payloads, WorkflowType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    StartWorkflowExecutionRequest,
)
from temporalio.client import WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from activities.roster_store import load_roster
from identity.assertion import ASSERTION_HEADER, sign
from identity.keys import SigningKey, new_signing_key
from identity.modes import WorkerIdentity
from schemas import Roster
from tests.support.engine import Engine, end_cases, signing_as
from tests.support.intake import customer_id_for
from tests.support.raw import raw_signal, raw_update
from worker import build_worker
from workflow_runner import replayer

ISSUER = new_signing_key("support-idp", "idp-1")
ATTACKER = new_signing_key("support-idp", "idp-1")  # the same names, another key: a forged signature
STRANGER = new_signing_key("elsewhere", "x-1")
OWNER, MANAGER = "sa-ana", "sa-max"
ROSTER = Roster.model_validate(
    {
        "agents": [
            {"id": MANAGER, "name": "Max Manager", "role": "manager", "team": "care", "authority_limit": 5000},
            {"id": "sa-sam", "name": "Sam Supervisor", "role": "supervisor", "team": "care", "supervisor_id": MANAGER},
            {"id": OWNER, "name": "Ana Agent", "role": "agent", "team": "care", "supervisor_id": "sa-sam", "authority_limit": 50},
        ]
    }
)
CONVERTER = pydantic_data_converter.payload_converter


@pytest.fixture
async def engine(clock_env, pool) -> AsyncIterator[Engine]:
    await load_roster(pool, ROSTER)
    task_queue = f"signed-{uuid.uuid4().hex[:8]}"
    plain = clock_env.client
    signing = signing_as(plain, ISSUER)
    identity = WorkerIdentity("signed", ISSUER.trusted_keys())
    async with build_worker(signing, pool, task_queue, identity=identity):
        client = Engine(signing, task_queue, read_your_writes=True, owner=OWNER, prefix="SA", customer_prefix="cu-", policy="standard")
        yield client
        await end_cases(client, client.started)


def assertion(
    payload: Any, *, workflow_id: str, action: str, sub: str | None = None, key: SigningKey = ISSUER, now: datetime | None = None
) -> str:
    return sign(
        key.private_key, issuer=key.issuer, key_id=key.key_id, sub=sub or payload["actor"], workflow_id=workflow_id,
        action=action, payload=payload, now=now or datetime.now(timezone.utc),
    )  # fmt: skip


def header(token: str | None) -> Header:
    return Header(fields={ASSERTION_HEADER: CONVERTER.to_payloads([token])[0]} if token else {})


async def update(engine: Engine, workflow_id: str, action: str, payload: dict, token: str | None) -> BaseException | None:
    """Send an update as an attacker would; returns the error it was refused with, or None if it was applied."""
    failure = await raw_update(engine.client, workflow_id, action, CONVERTER.to_payloads([payload]), header(token))
    return None if failure is None else await pydantic_data_converter.decode_failure(failure)


async def signal(engine: Engine, workflow_id: str, action: str, payload: dict, token: str | None) -> None:
    await raw_signal(engine.client, workflow_id, action, CONVERTER.to_payloads([payload]), header(token))


GOODWILL = {"actor": OWNER, "kind": "credit", "amount": 4900, "currency": "GBP", "description": "Goodwill credit"}


def attacks(workflow_id: str, other_case: str) -> dict[str, tuple[dict, str | None, str]]:
    """Each forged message: its payload, its assertion, and the check its refusal must name."""
    note = {"actor": OWNER, "text": "Called the bank", "request_id": "n-1"}
    past = datetime.now(timezone.utc) - timedelta(minutes=10)
    return {
        "no assertion": (note, None, "no assertion"),
        "untrusted issuer": (note, assertion(note, workflow_id=workflow_id, action="add_note", key=STRANGER), "unknown key"),
        "forged signature": (note, assertion(note, workflow_id=workflow_id, action="add_note", key=ATTACKER), "bad signature"),
        "expired": (note, assertion(note, workflow_id=workflow_id, action="add_note", now=past), "expired"),
        "another case": (note, assertion(note, workflow_id=other_case, action="add_note"), "another case"),
        "another action": (note, assertion(note, workflow_id=workflow_id, action="make_promise"), "another action"),
        "another payload": (
            {**note, "text": "Refund approved"}, assertion(note, workflow_id=workflow_id, action="add_note"), "another payload",
        ),
        "forged manager": (
            {**note, "actor": MANAGER}, assertion({**note, "actor": MANAGER}, workflow_id=workflow_id, action="add_note", sub=OWNER),
            "actor mismatch",
        ),
    }


async def wait_for_events(engine: Engine, complaint_id: str, count: int) -> list:
    deadline = asyncio.get_running_loop().time() + 15
    while len(timeline := await engine.timeline(complaint_id)) < count:
        assert asyncio.get_running_loop().time() < deadline, f"{len(timeline)} of {count} events"
        await asyncio.sleep(0.05)
    return timeline


async def replays_without_any_key(engine: Engine, complaint_id: str) -> None:
    history = await engine.handle(complaint_id).fetch_history()
    await replayer(pydantic_data_converter).replay_workflow(history)


async def test_a_signed_action_applies_and_the_timeline_shows_who_vouched(engine):
    complaint_id, _ = await engine.open()
    state = await engine.act(complaint_id, "add_note", {"actor": OWNER, "text": "Called the bank"})
    note = (await engine.timeline(complaint_id))[state.event_count - 1]
    assert note.kind == "note_added" and note.data["verified_by"] == {"iss": "support-idp", "kid": "idp-1"}
    assert (await engine.timeline(complaint_id))[0].data["verified_by"] == {"iss": "support-idp", "kid": "idp-1"}
    await replays_without_any_key(engine, complaint_id)


async def test_every_forged_update_is_refused_naming_the_check(engine):
    complaint_id, _ = await engine.open()
    workflow_id = f"complaint-{complaint_id}"
    before = await engine.state(complaint_id)
    for name, (payload, token, check) in attacks(workflow_id, "complaint-SA-other").items():
        error = await update(engine, workflow_id, "add_note", payload, token)
        assert isinstance(error, ApplicationError) and error.type == "NotAllowed", (name, error)
        assert f"the actor assertion was refused ({check}" in error.message, (name, error.message)
    assert (await engine.state(complaint_id)) == before
    # The forged manager: the owner offers a 4,900 credit (above their authority), and someone who is not the
    # manager approves it in the manager's name.
    offered = await engine.act(complaint_id, "offer_goodwill", GOODWILL)
    approval = {"actor": MANAGER, "goodwill_id": offered.goodwill[-1].goodwill_id, "approve": True}
    for key, check in ((ATTACKER, "bad signature"), (STRANGER, "unknown key")):
        forged = assertion(approval, workflow_id=workflow_id, action="approve_goodwill", key=key)
        error = await update(engine, workflow_id, "approve_goodwill", approval, forged)
        assert isinstance(error, ApplicationError) and error.type == "NotAllowed" and check in error.message, error
    assert (await engine.state(complaint_id)).goodwill[-1].status == "awaiting_approval"
    await replays_without_any_key(engine, complaint_id)


async def test_every_forged_signal_leaves_one_refusal_and_changes_nothing_else(engine):
    complaint_id, customer = await engine.open()
    workflow_id = f"complaint-{complaint_id}"
    before = await engine.timeline(complaint_id)
    cases = attacks(workflow_id, "complaint-SA-other")
    withdraw = {"actor": customer, "reason": "Sorted it myself"}
    cases["forged customer"] = (withdraw, assertion(withdraw, workflow_id=workflow_id, action="withdraw", key=STRANGER), "unknown key")
    for payload, token, _ in cases.values():
        action = "withdraw" if payload is withdraw else "add_note"
        await signal(engine, workflow_id, action, payload, token)
    timeline = await wait_for_events(engine, complaint_id, len(before) + len(cases))
    added = timeline[len(before) :]
    assert [e.kind for e in added] == ["command_rejected"] * len(cases)
    for event, (name, (_, _, check)) in zip(added, cases.items()):
        assert f"the actor assertion was refused ({check}" in event.data["reason"], (name, event.data["reason"])
    assert (await engine.state(complaint_id)).status != "withdrawn"
    await replays_without_any_key(engine, complaint_id)


async def test_a_signed_signal_applies(engine):
    complaint_id, _ = await engine.open()
    workflow_id = f"complaint-{complaint_id}"
    before = await engine.timeline(complaint_id)
    note = {"actor": OWNER, "text": "Called the bank"}
    await signal(engine, workflow_id, "add_note", note, assertion(note, workflow_id=workflow_id, action="add_note"))
    [added] = (await wait_for_events(engine, complaint_id, len(before) + 1))[len(before) :]
    assert added.kind == "note_added" and added.data["verified_by"]["iss"] == "support-idp"
    await replays_without_any_key(engine, complaint_id)


@pytest.mark.parametrize("forgery", ["unsigned", "untrusted issuer"])
async def test_a_start_without_a_valid_assertion_fails_as_invalid_intake(engine, forgery):
    complaint_id = f"SA-{uuid.uuid4().hex[:10]}"
    workflow_id = f"complaint-{complaint_id}"
    intake = {
        "complaint_id": complaint_id, "customer": {"customer_id": customer_id_for(complaint_id), "name": "Priya Natarajan"},
        "channel": "email", "category": "billing", "severity": "medium", "summary": "Charged twice", "received_by": OWNER,
    }  # fmt: skip
    token = None if forgery == "unsigned" else assertion(intake, workflow_id=workflow_id, action="start", sub=OWNER, key=STRANGER)
    client = engine.client
    await client.workflow_service.start_workflow_execution(
        StartWorkflowExecutionRequest(
            namespace=client.namespace, workflow_id=workflow_id, workflow_type=WorkflowType(name="ComplaintWorkflow"),
            task_queue=TaskQueue(name=engine.task_queue), input=Payloads(payloads=CONVERTER.to_payloads([intake])),
            header=header(token), identity="attacker", request_id=uuid.uuid4().hex,
        )  # fmt: skip
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await engine.handle(complaint_id).result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidIntake", cause
    assert "the actor assertion was refused" in cause.message
    await replays_without_any_key(engine, complaint_id)


async def test_a_caller_cannot_skip_the_check_by_starting_a_continued_run(engine, clock_env):
    """A continued run's argument names the case's mode; started by a caller, not by continue-as-new, it
    proves its actor like any start, and its own claim of trusted-callers counts for nothing."""
    from schemas.state import ContinuedCase
    from tests.support.case import continued_run

    complaint_id = f"SA-{uuid.uuid4().hex[:10]}"
    now = await clock_env.get_current_time()
    continued = continued_run(complaint_id, now, owner=OWNER, supervisor="sa-sam", manager=MANAGER)
    forged = ContinuedCase(continued_case=continued.continued_case, identity_mode="trusted-callers")
    client = engine.client
    await client.workflow_service.start_workflow_execution(
        StartWorkflowExecutionRequest(
            namespace=client.namespace, workflow_id=f"complaint-{complaint_id}", workflow_type=WorkflowType(name="ComplaintWorkflow"),
            task_queue=TaskQueue(name=engine.task_queue), input=Payloads(payloads=CONVERTER.to_payloads([forged])),
            identity="attacker", request_id=uuid.uuid4().hex,
        )  # fmt: skip
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await engine.handle(complaint_id).result()
    assert isinstance(failed.value.cause, ApplicationError) and failed.value.cause.type == "InvalidIntake"
    assert "no assertion" in failed.value.cause.message


async def test_after_a_key_rotation_a_worker_replays_the_verdicts_it_would_no_longer_give(dev_env, pool):
    """Actions signed and refused under the old key; then the worker trusts only a new key. A worker with no
    cache replays the case (a query), and takes the next action signed with the new key: no task fails."""
    from temporalio.api.enums.v1 import EventType

    await load_roster(pool, ROSTER)
    task_queue = f"signed-{uuid.uuid4().hex[:8]}"
    plain = dev_env.client  # a real server: a restarted worker's sticky queue is let go at once

    def signing(key: SigningKey) -> Any:
        return signing_as(plain, key)

    old = signing(ISSUER)
    async with build_worker(old, pool, task_queue, identity=WorkerIdentity("signed", ISSUER.trusted_keys())):
        engine = Engine(old, task_queue, read_your_writes=True, owner=OWNER, prefix="SA", customer_prefix="cu-", policy="standard")
        complaint_id, _ = await engine.open()
        workflow_id = f"complaint-{complaint_id}"
        note = {"actor": OWNER, "text": "Called the bank"}
        await signal(engine, workflow_id, "add_note", note, assertion(note, workflow_id=workflow_id, action="add_note"))
        await signal(engine, workflow_id, "add_note", note, assertion(note, workflow_id=workflow_id, action="add_note", key=STRANGER))
        timeline = await wait_for_events(engine, complaint_id, 6)
        assert [e.kind for e in timeline[-2:]] == ["note_added", "command_rejected"]
    new = signing(STRANGER)
    async with build_worker(new, pool, task_queue, identity=WorkerIdentity("signed", STRANGER.trusted_keys())):
        engine = Engine(new, task_queue, read_your_writes=True, owner=OWNER, prefix="SA", customer_prefix="cu-", policy="standard")
        assert [e.kind for e in (await engine.timeline(complaint_id))[-2:]] == ["note_added", "command_rejected"]
        state = await engine.act(complaint_id, "add_note", {"actor": OWNER, "text": "Signed with the new key"})
        assert (await engine.timeline(complaint_id))[state.event_count - 1].data["verified_by"]["iss"] == "elsewhere"
        history = await engine.handle(complaint_id).fetch_history()
        assert not [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
        await end_cases(engine, [complaint_id])


async def test_the_problem_door_takes_a_signed_contact_and_refuses_a_forged_one(engine):
    """ComplaintClient.start goes through the door, signed; the door starts the case with the engine's own
    signature. A contact sent to the door unsigned, or signed by an untrusted key, is refused NotAllowed."""
    from workflows.problem_door import UPDATE_NAME, door_id

    complaint_id = f"SA-{uuid.uuid4().hex[:10]}"
    customer = {"customer_id": customer_id_for(complaint_id), "name": "Priya Natarajan"}
    intake = {
        "complaint_id": complaint_id, "customer": customer, "channel": "email", "category": "billing",
        "severity": "medium", "summary": "Charged twice", "received_by": OWNER,
    }  # fmt: skip
    started = await engine.start(intake)
    engine.started.append(started.complaint_id)
    assert started.outcome == "opened" and started.owner == OWNER
    door = door_id(customer["customer_id"], "billing")
    contact = {**intake, "complaint_id": f"{complaint_id}-2", "summary": "Still charged twice"}
    for token, check in ((None, "no assertion"), (assertion(contact, workflow_id=door, action=UPDATE_NAME, sub=OWNER, key=STRANGER), "unknown key")):
        error = await update(engine, door, UPDATE_NAME, contact, token)
        assert isinstance(error, ApplicationError) and error.type == "NotAllowed" and check in error.message, error
    await replayer(pydantic_data_converter).replay_workflow(await engine.client.get_workflow_handle(door).fetch_history())
    await engine.client.get_workflow_handle(door).terminate("test finished")


async def test_a_client_signs_with_a_command_named_by_a_setting(engine, tmp_path):
    """COMPLAINTS_SIGNING_COMMAND: the claims on stdin, the JWS on stdout (a KMS or HSM stands behind it in
    production; here a script signing with the trusted issuer's key)."""
    import sys

    from identity.keys import signing_key_json
    from identity.signers import CommandSigner

    key_file = tmp_path / "key.json"
    key_file.write_text(signing_key_json(ISSUER))
    script = tmp_path / "sign.py"
    script.write_text(
        "import json, sys, time\n"
        "import jwt\n"
        "from identity.keys import read_signing_key\n"
        f"key = read_signing_key(__import__('pathlib').Path({str(key_file)!r}))\n"
        "claims = json.load(sys.stdin)\n"
        "now = int(time.time())\n"
        "claims = {k: v for k, v in claims.items() if v is not None} | {'iss': key.issuer, 'iat': now, 'exp': now + 60}\n"
        "print(jwt.encode(claims, key.private_key, algorithm='EdDSA', headers={'kid': key.key_id}))\n"
    )
    complaint_id, _ = await engine.open()
    plain = engine.client
    by_command = signing_as(plain, CommandSigner(f"{sys.executable} {script}"))
    handle = by_command.get_workflow_handle(f"complaint-{complaint_id}")
    state = await handle.execute_update("add_note", {"actor": OWNER, "text": "Signed by a command"}, result_type=dict)
    timeline = await engine.timeline(complaint_id)
    assert timeline[state["event_count"] - 1].data["verified_by"] == {"iss": "support-idp", "kid": "idp-1"}
    refusing = signing_as(plain, CommandSigner("echo no >&2; exit 3"))
    with pytest.raises(Exception, match="COMPLAINTS_SIGNING_COMMAND printed no assertion: no"):
        await refusing.get_workflow_handle(f"complaint-{complaint_id}").signal("add_note", {"actor": OWNER, "text": "x"})
