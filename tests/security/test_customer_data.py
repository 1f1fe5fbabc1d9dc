"""Customer data on the dev server: nothing a customer told us is plain text in Temporal's history, and
no email or phone number reaches the logs.

A worker whose client has the encryption codec (stack.client.connect_client with keys) works a
case's life through the problem door: intake with name, email, phone and details, a second
contact that joins, facts, notes, a rejected signal that quotes a fact, the close and feedback,
and an intake refused for a malformed phone. Then a client WITHOUT the codec reads the raw
histories and finds none of those strings in any byte of any event (inputs, update arguments and
results, signals, activity inputs and results, memos, failures), while the codec client reads the
state as usual.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from contextlib import asynccontextmanager
from typing import AsyncIterator

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowFailureError

from codec.encryption import ENCODING, KEY_ID_METADATA
from codec.keys import new_key_entry
from complaint_client import ComplaintClient
from config import load_settings
from schemas import Roster
from stack.client import connect_client
from tests.conftest import running_worker
from tests.support.logs import json_logs
from tests.support.paths import REPO
from workflows import problem_door

pytestmark = pytest.mark.integration

DEMO_ROSTER = Roster.model_validate(json.loads((REPO / "roster" / "demo.json").read_text()))
KEYS = f"{new_key_entry('k2')},{new_key_entry('k1')}"
OWNER = "a.patel"


class Customer:
    """One customer's contact data, unique to the test, and every form it could leak in."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        digits = str(int(tag, 16) % 900000 + 100000)  # six digits of our own, so a hit is ours
        self.id = f"cu-{tag}"
        self.name = f"Ottilie Brannigan-Quist{tag}"
        self.email = f"ottilie.bq.{tag}@example.org"
        self.work_email = f"o.quist.{tag}@work.example.net"
        self.phone = f"+44 7700 {digits}"
        self.callback = f"07700 {int(digits) + 1}"
        self.details = f"My flat is 4B Larkspur{tag} Road; the parcel was left in the rain."
        self.bad_phone = f"ring me on 07700 {int(digits) + 2} after six"
        self.refund_account = f"GB29 NWBK 6016 {digits[:4]} {digits[2:]}77"

    @property
    def secrets(self) -> list[str]:
        """Strings that must never be stored in plain text (the digits alone too: any formatting)."""
        tail = self.phone.rsplit(" ", 1)[1]
        return [
            self.name, self.email, self.work_email, self.phone, self.callback, self.bad_phone,
            tail, str(int(tail) + 1), str(int(tail) + 2), self.details, f"Larkspur{self.id[3:]}",
        ]  # fmt: skip

    @property
    def contact_data(self) -> list[str]:
        """What the logs must never print: emails and phone numbers, in any form."""
        tail = self.phone.rsplit(" ", 1)[1]
        return [self.email, self.work_email, self.phone, self.callback, tail, str(int(tail) + 1), str(int(tail) + 2)]


async def codec_client(dev_env) -> Client:  # type: ignore[no-untyped-def]
    address = dev_env.client.service_client.config.target_host
    settings = load_settings({"TEMPORAL_ADDRESS": address, "COMPLAINTS_ENCRYPTION_KEYS": KEYS})
    return await connect_client(address, dev_env.client.namespace, settings=settings)


@asynccontextmanager
async def encrypted_engine(dev_env, pool) -> AsyncIterator[ComplaintClient]:  # type: ignore[no-untyped-def]
    from activities.roster_store import load_roster

    await load_roster(pool, DEMO_ROSTER)
    async with running_worker(await codec_client(dev_env), pool) as engine:
        yield engine


async def live_a_case(engine: ComplaintClient, who: Customer) -> tuple[str, list[str]]:
    """A case's life through the door; returns its complaint id and the workflow ids it touched."""
    complaint_id = f"PII-{uuid.uuid4().hex[:8]}"
    intake = {
        "complaint_id": complaint_id,
        "customer": {"customer_id": who.id, "name": who.name, "email": who.email, "phone": who.phone},
        "channel": "email",
        "category": "billing",
        "severity": "high",
        "summary": "Charged twice for one order",
        "details": who.details,
        "received_by": OWNER,
        "policy": "demo",
        "facts": {"callback_number": who.callback, "refund_account": who.refund_account},
    }
    started = await engine.start(intake)
    assert started.outcome == "opened" and started.owner == OWNER
    customer = f"customer:{who.id}"
    await engine.act(complaint_id, "accept_ownership", {"actor": OWNER})
    await engine.act(
        complaint_id, "contact_customer", {"actor": OWNER, "channel": "phone", "summary": f"Rang {who.name} on {who.phone}"}
    )
    await engine.act(complaint_id, "provide_info", {"actor": customer, "facts": {"work_email": who.work_email}, "channel": "email"})
    # A signal the rules refuse, whose reason quotes a known fact: one command_rejected event (and a log line).
    await engine.send(
        complaint_id, "request_info", {"actor": OWNER, "fields": ["callback_number", "refund_account"], "question": "Best number?"}
    )
    await engine.act(complaint_id, "add_note", {"actor": OWNER, "text": f"Customer prefers {who.work_email}"})
    # A second contact about the same problem joins the case through the door.
    joined = await engine.start(
        {**intake, "complaint_id": f"{complaint_id}-2", "channel": "phone", "summary": "Calling again", "facts": {"landline": who.callback}}
    )
    assert joined.outcome == "joined" and joined.complaint_id == complaint_id
    await engine.act(complaint_id, "propose_resolution", {"actor": OWNER, "resolution": "Refunded the duplicate", "root_cause": "Double capture"})
    await engine.act(complaint_id, "confirm_resolution", {"actor": customer, "satisfied": True, "comment": f"Thanks, {who.name}"})
    state = await engine.act(complaint_id, "record_feedback", {"actor": customer, "score": 4, "comment": f"Reach me at {who.email}"})
    assert state.status == "closed"
    timeline = await engine.timeline(complaint_id)
    rejected = [e for e in timeline if e.kind == "command_rejected"]
    assert len(rejected) == 1 and who.callback in rejected[0].data["reason"]

    # An intake refused for a malformed phone: the failure message quotes it.
    bad_id = f"PII-{uuid.uuid4().hex[:8]}"
    bad = {**intake, "complaint_id": bad_id, "customer": {**intake["customer"], "phone": who.bad_phone}}
    handle = await engine.client.start_workflow("ComplaintWorkflow", bad, id=f"complaint-{bad_id}", task_queue=engine.task_queue)
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert who.bad_phone in str(failed.value.cause)  # the codec client reads the message
    return complaint_id, [f"complaint-{complaint_id}", problem_door.door_id(who.id, "billing"), f"complaint-{bad_id}"]


async def test_the_raw_history_holds_no_plain_text_customer_data(dev_env, pool):
    who = Customer()
    async with encrypted_engine(dev_env, pool) as engine:
        complaint_id, workflow_ids = await live_a_case(engine, who)
        state = await engine.state(complaint_id)  # the codec client reads everything as usual
        assert (state.customer.name, state.customer.email, state.customer.phone) == (who.name, who.email, who.phone)
        assert state.facts["work_email"].value == who.work_email

        plain_client = dev_env.client  # pydantic converter, no codec
        assert plain_client.data_converter.payload_codec is None
        kinds_seen: set[str] = set()
        for workflow_id in workflow_ids:
            history = await plain_client.get_workflow_handle(workflow_id).fetch_history()
            assert len(history.events) > 3, workflow_id
            for event in history.events:
                raw = event.SerializeToString()
                kinds_seen.add(event.WhichOneof("attributes"))
                for secret in who.secrets:
                    assert secret.encode() not in raw, f"{secret!r} in plain text in {workflow_id} event {event.event_id} ({event.WhichOneof('attributes')})"

        # The check can see plain text: the first event's input is ours, encrypted, and decrypts to the intake.
        history = await plain_client.get_workflow_handle(workflow_ids[0]).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        payload: Payload = started.input.payloads[0]
        assert payload.metadata["encoding"] == ENCODING and payload.metadata[KEY_ID_METADATA] == b"k2"
        decoded = await engine.client.data_converter.payload_codec.decode([payload])
        assert who.name.encode() in decoded[0].data and who.details.encode() in decoded[0].data

        # Every kind of payload-carrying event was covered.
        assert {
            "workflow_execution_started_event_attributes",
            "workflow_execution_update_accepted_event_attributes",
            "workflow_execution_update_completed_event_attributes",
            "workflow_execution_signaled_event_attributes",
            "activity_task_scheduled_event_attributes",
            "activity_task_completed_event_attributes",
            "workflow_execution_failed_event_attributes",
        } <= kinds_seen

        # Without the keys a client cannot read a case.
        with pytest.raises(Exception, match="binary/encrypted|encoding"):
            await ComplaintClient(plain_client, engine.task_queue).state(complaint_id)


@pytest.fixture
def captured_json_logs():
    """configure_logging("json") into a buffer, as the worker runs it; yields the text; restores logging."""
    with json_logs() as (_, buffer):
        yield buffer.getvalue


async def test_the_logs_of_a_case_s_life_print_no_email_or_phone(dev_env, pool, captured_json_logs):
    who = Customer()
    async with encrypted_engine(dev_env, pool) as engine:
        complaint_id, _ = await live_a_case(engine, who)
        await asyncio.sleep(0.2)  # let the last activity lines land
    text = captured_json_logs()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    mine = [line for line in lines if complaint_id in json.dumps(line) or who.id in json.dumps(line)]
    events = {line["event"] for line in mine}
    # The life was logged (workflow, activity and door lines), the rejected signal with its reason...
    assert {"complaint received", "owner assigned", "action applied", "signal rejected", "case events recorded"} <= events, events
    rejected = next(line for line in mine if line["event"] == "signal rejected")
    # Issue 14.5: a kind and the fields at fault, never the reason, which quotes the known facts' values.
    assert rejected["reason_code"] == "InvalidCommand" and rejected["fields"] == ["callback_number", "refund_account"]
    assert "reason" not in rejected and who.refund_account not in text
    # ...and no email address or phone number, in any form, anywhere in the output.
    for secret in who.contact_data:
        assert secret not in text, f"{secret!r} printed in the logs"
    assert not re.search(r"[A-Za-z0-9._%+-]+@example\.org", text)
    # Names and the story are not logged either: lines carry ids, never the intake or the state.
    assert who.name not in text and who.details not in text


# --- the real `temporal` CLI: hand-written JSON still works, the codec server shows the rest ---------


async def temporal_cli(address: str, namespace: str, *args: str) -> tuple[int, str, str]:
    from tests.conftest import BIN_DIR

    process = await asyncio.create_subprocess_exec(
        str(BIN_DIR / "temporal"), *args, "--address", address, "--namespace", namespace,
        "--disable-config-file", "--disable-config-env", "--color", "never",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


def payloads_in(value, encodings: set[str] | None = None, texts: str = "") -> tuple[set[str], str]:  # type: ignore[no-untyped-def]
    """Every payload of a `temporal ... -o json` answer: their encodings, and their data decoded, joined."""
    import base64

    encodings = set() if encodings is None else encodings
    if isinstance(value, dict):
        if isinstance(value.get("metadata"), dict) and "encoding" in value["metadata"]:
            encodings.add(base64.b64decode(value["metadata"]["encoding"]).decode())
            texts += base64.b64decode(value.get("data", "")).decode(errors="replace") + "\n"
        for child in value.values():
            encodings, texts = payloads_in(child, encodings, texts)
    elif isinstance(value, list):
        for child in value:
            encodings, texts = payloads_in(child, encodings, texts)
    return encodings, texts


async def test_the_temporal_cli_starts_with_plain_json_and_reads_through_the_codec_server(dev_env, pool):
    from codec.keys import parse_keys
    from codec.server import start_codec_server

    who = Customer()
    complaint_id = f"PII-{uuid.uuid4().hex[:8]}"
    workflow_id = f"complaint-{complaint_id}"
    intake = json.dumps(
        {
            "complaint_id": complaint_id,
            "customer": {"customer_id": who.id, "name": who.name, "email": who.email},
            "channel": "phone",
            "category": "billing",
            "severity": "high",
            "summary": "Charged twice",
            "received_by": OWNER,
        }
    )
    address, namespace = dev_env.client.service_client.config.target_host, dev_env.client.namespace
    server = start_codec_server(parse_keys(KEYS), port=0)
    try:
        async with encrypted_engine(dev_env, pool) as engine:
            cli = lambda *args: temporal_cli(address, namespace, *args)  # noqa: E731
            # Hand-written plain JSON, as docs/contract.md promises: the encrypting worker takes it.
            status, _, err = await cli(
                "workflow", "start", "--type", "ComplaintWorkflow", "--task-queue", engine.task_queue,
                "--workflow-id", workflow_id, "--input", intake,
            )  # fmt: skip
            assert status == 0, err
            assert await engine.wait_for_owner(complaint_id) == OWNER

            # Through the codec server the CLI encrypts its input and reads the encrypted answer.
            codec = ("--codec-endpoint", server.url)
            status, out, err = await cli(
                "workflow", "update", "execute", "--workflow-id", workflow_id, "--name", "add_note",
                "--input", json.dumps({"actor": OWNER, "text": f"Write to {who.work_email}"}), "-o", "json", *codec,
            )  # fmt: skip
            assert status == 0, err
            assert json.loads(out)["result"]["customer"]["email"] == who.email
            status, out, err = await cli("workflow", "query", "--workflow-id", workflow_id, "--name", "state", "-o", "json", *codec)
            assert status == 0, err
            assert json.loads(out)["queryResult"][0]["customer"]["name"] == who.name
            status, out, err = await cli("workflow", "show", "--workflow-id", workflow_id, "-o", "json", *codec)
            assert status == 0, err
            encodings, texts = payloads_in(json.loads(out))
            assert "binary/encrypted" not in encodings and who.work_email in texts  # the note's update, decrypted

            # A refused update's reason is encrypted too (it may quote customer data); the codec server reads it.
            bad_note = ("workflow", "update", "execute", "--workflow-id", workflow_id, "--name", "add_note",
                        "--input", json.dumps({"actor": OWNER, "txt": "typo"}))  # fmt: skip
            status, out, err = await cli(*bad_note, *codec)
            assert status != 0 and "text: required field is missing" in err, err
            status, out, err = await cli(*bad_note)
            assert status != 0 and "Encoded failure (type: InvalidCommand" in err and "typo" not in err, err

            # Without it the answer is ciphertext, and the note was stored encrypted.
            status, out, err = await cli("workflow", "query", "--workflow-id", workflow_id, "--name", "state", "-o", "json")
            assert who.name not in out + err
            history = await dev_env.client.get_workflow_handle(workflow_id).fetch_history()
            assert all(who.work_email.encode() not in event.SerializeToString() for event in history.events)
            await dev_env.client.get_workflow_handle(workflow_id).terminate("test finished")
    finally:
        server.shutdown()
        server.server_close()
