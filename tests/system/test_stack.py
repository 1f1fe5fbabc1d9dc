"""The runtime stack: the embedded dev server (stack/temporal.py) and structured logging (logs.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from pydantic import BaseModel
from temporalio import workflow
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import WorkflowExecutionStatus
from temporalio.worker import Worker

import logs
import stack.temporal
from stack import redact_url
from stack.client import connect_client
from stack.ports import START_ATTEMPTS, free_port
from stack.temporal import (
    DevServer,
    PortClashError,
    registered_search_attributes,
    start_dev_server,
)
from tests.support.logs import json_logs
from workflows.search_attributes import ALL


class Ping(BaseModel):
    note: str


@workflow.defn(sandboxed=False)
class WaitForSignal:
    """Trivial: waits for one signal, then returns what it was started with and what it got."""

    def __init__(self) -> None:
        self.got: str | None = None

    @workflow.run
    async def run(self, ping: Ping) -> Ping:
        await workflow.wait_condition(lambda: self.got is not None)
        return Ping(note=f"{ping.note}+{self.got}")

    @workflow.signal
    def poke(self, value: str) -> None:
        self.got = value


def expected_attributes() -> dict[str, int]:
    return {key.name: int(key.indexed_value_type) for key in ALL}


@pytest.mark.integration
async def test_dev_server_search_attributes_persistence_and_reuse(tmp_path: Path) -> None:
    server = await start_dev_server(tmp_path, port=0, ui_port=0)
    port = int(server.address.rsplit(":", 1)[1])
    try:
        assert not server.reused and port != 0
        assert (tmp_path / "temporal.db").exists() and (tmp_path / "temporal-server.log").exists()
        client = await connect_client(server.address)
        registered = await registered_search_attributes(client, "default")
        assert {k: registered.get(k) for k in expected_attributes()} == expected_attributes()

        # Something already answers on the port: a second start shares it and its stop does nothing.
        second = await start_dev_server(tmp_path / "elsewhere", port=port, ui_port=free_port())
        assert second.reused and second.address == server.address
        second.stop()
        await client.workflow_service.get_system_info(GetSystemInfoRequest())  # still serving

        # A workflow started (and its first task run) before a restart...
        task_queue = f"stack-test-{uuid.uuid4().hex[:8]}"
        workflow_id = f"wait-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[WaitForSignal]):
            handle = await client.start_workflow(
                WaitForSignal.run, Ping(note="before"), id=workflow_id, task_queue=task_queue
            )
            await _wait_for_first_task(handle)
    finally:
        server.stop()
    assert server.process is not None and server.process.poll() is not None

    # ...is still there after it, on the same db file and the same flags (the port may differ).
    async with start_dev_server(tmp_path, port=0, ui_port=0) as again:
        assert not again.reused
        client = await connect_client(again.address)
        registered = await registered_search_attributes(client, "default")
        assert {k: registered.get(k) for k in expected_attributes()} == expected_attributes()
        handle = client.get_workflow_handle_for(WaitForSignal.run, workflow_id)
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        async with Worker(client, task_queue=task_queue, workflows=[WaitForSignal]):
            await handle.signal(WaitForSignal.poke, "after")
            result = await handle.result(rpc_timeout=timedelta(seconds=20))
        assert result == Ping(note="before+after")


async def _wait_for_first_task(handle) -> None:  # type: ignore[no-untyped-def]
    for _ in range(100):
        history = await handle.fetch_history()
        if any(e.HasField("workflow_task_completed_event_attributes") for e in history.events):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the workflow's first task never completed")


async def test_start_dev_server_rejects_a_port_held_by_something_else(tmp_path: Path) -> None:
    from stack.temporal import DevServerError

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(DevServerError, match="not a Temporal frontend"):
            await start_dev_server(tmp_path, port=port, ui_port=free_port(), timeout=1)


@pytest.mark.integration
async def test_a_start_that_finds_its_port_taken_starts_again_on_fresh_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port picked free can be bound by someone else before the server binds it (CI saw it)."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))  # bound, not listening: nothing answers, yet no one else may bind it
        taken = squatter.getsockname()[1]
        picks = iter([taken])  # the first start's gRPC port; every later pick is really free
        monkeypatch.setattr(stack.temporal, "free_port", lambda: next(picks, None) or free_port())
        async with start_dev_server(tmp_path, port=0, ui_port=0) as server:
            assert not server.reused and not server.address.endswith(f":{taken}")
            await connect_client(server.address)
    log_text = (tmp_path / "temporal-server.log").read_text()
    assert log_text.count(" server start-dev ") == 2
    assert f"127.0.0.1:{taken}: bind: address already in use" in log_text


async def test_a_given_port_that_stays_taken_fails_after_the_attempts(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        taken = squatter.getsockname()[1]
        with pytest.raises(PortClashError, match="address already in use"):
            await start_dev_server(tmp_path, port=taken, ui_port=free_port())
    assert (tmp_path / "temporal-server.log").read_text().count(" server start-dev ") == START_ATTEMPTS


def test_dev_server_handle_for_a_reused_server_stops_nothing() -> None:
    handle = DevServer("127.0.0.1:1", None, "default", None, None, None)
    assert handle.reused
    handle.stop()  # no process: nothing to do, no error


def test_redact_url_hides_the_password_only() -> None:
    assert redact_url("postgresql://app:s3cret@db:5432/complaints") == "postgresql://app:***@db:5432/complaints"
    assert redact_url("postgresql://postgres@/complaints?host=/tmp/x") == "postgresql://postgres@/complaints?host=/tmp/x"


@pytest.fixture
def json_log_lines():
    """configure_logging("json") into a buffer; yields a function returning the parsed lines; restores logging."""
    with json_logs() as (chosen, buffer):
        assert chosen == "json"
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_a_log_handler_lock_left_held_never_stops_the_logs(json_log_lines) -> None:
    """The SDK interrupts a deadlocked workflow thread with an asynchronous exception, which can leave a
    handler's lock held by a thread that is gone: the worker's handler takes no lock, so logging goes on."""
    import threading

    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logs.UnlockedStreamHandler)
    taken = threading.Event()

    def take_and_leave() -> None:
        handler.acquire()  # and never release: a thread interrupted between acquire() and its try
        taken.set()

    threading.Thread(target=take_and_leave).start()
    assert taken.wait(5)
    done = threading.Event()

    def log_lines() -> None:
        logging.getLogger("temporalio.worker._workflow").error("Failed handling activation on workflow with run ID r-9")
        handler.flush()
        done.set()

    threading.Thread(target=log_lines, daemon=True).start()
    assert done.wait(5), "logging blocked on the handler's lock"
    assert [line["event"] for line in json_log_lines()][-1] == "Failed handling activation on workflow with run ID r-9"


def test_json_logs_flatten_temporal_context_and_keep_extras(json_log_lines) -> None:
    logging.getLogger("temporalio.workflow").info(
        "owner assigned",
        extra={
            "temporal_workflow": {"workflow_id": "complaint-C1", "run_id": "r-1", "workflow_type": "ComplaintWorkflow"},
            "complaint_id": "C1",
            "actor": "agent-7",
        },
    )
    logging.getLogger("temporalio.activity").warning(
        "retrying",
        extra={
            "temporal_activity": {
                "activity_id": "3",
                "activity_type": "record_case_events",
                "attempt": 2,
                "workflow_id": "complaint-C1",
                "workflow_run_id": "r-1",
            },
            "complaint_id": "C1",
        },
    )
    structlog.get_logger("demo").info("case opened", complaint_id="C1", actor="system:demo")

    wf_line, act_line, own_line = json_log_lines()
    assert wf_line["event"] == "owner assigned" and wf_line["level"] == "info"
    assert (wf_line["workflow_id"], wf_line["run_id"], wf_line["complaint_id"], wf_line["actor"]) == (
        "complaint-C1", "r-1", "C1", "agent-7",
    )  # fmt: skip
    assert "temporal_workflow" not in wf_line
    assert (act_line["activity_type"], act_line["attempt"], act_line["run_id"]) == ("record_case_events", 2, "r-1")
    assert act_line["workflow_id"] == "complaint-C1" and act_line["complaint_id"] == "C1"
    assert own_line["complaint_id"] == "C1" and own_line["logger"] == "demo" and "timestamp" in own_line


def test_json_logs_mask_email_and_phone(json_log_lines) -> None:
    structlog.get_logger("intake").info(
        "complaint received",
        email="jane.doe@example.com",
        customer={"customer_id": "c-1", "email": "jane.doe@example.com", "phone": "+44 7700 900123"},
    )
    logging.getLogger("somewhere").info("contact", extra={"customer_phone": "07700 900123"})

    lines = json_log_lines()
    text = json.dumps(lines)
    assert "jane.doe" not in text and "900123" not in text
    first, second = lines
    assert first["email"] == "j***@example.com"
    assert first["customer"]["phone"] == "***23" and first["customer"]["customer_id"] == "c-1"
    assert second["customer_phone"] == "***23"


def test_json_logs_scrub_emails_and_phone_numbers_from_free_text(json_log_lines) -> None:
    """A rejection reason or an error may quote contact data under any key, or in the message itself."""
    structlog.get_logger("case").info(
        "signal rejected",
        reason="do not ask the customer again: callback is already known: '07700 900123', via jane.doe@example.com",
    )
    logging.getLogger("somewhere").warning("could not reach +44 7700 900123 or (555) 123-4567 or 555-123-4567")
    try:
        raise ValueError("bad contact jane.doe@example.com / +1 (555) 987-6543")
    except ValueError:
        structlog.get_logger("case").exception("failed")
    # Ids, timestamps, durations, addresses and counts are left alone.
    untouched = {
        "run_id": "01957345-1234-7123-8123-123412341234",
        "at": "2026-11-22T21:06:26.123456+00:00",
        "waited_s": 0.25,
        "address": "127.0.0.1:7233",
        "order": "A-00012345",
        "ids": [12, 13],
        "dsn": "postgresql://complaints:***@db:5432/complaints",
    }
    structlog.get_logger("case").info("plain", **untouched)

    lines = json_log_lines()
    text = json.dumps(lines)
    for secret in ("900123", "123-4567", "987-6543", "jane.doe"):
        assert secret not in text, secret
    assert "'***23', via j***@example.com" in lines[0]["reason"]
    assert lines[1]["event"] == "could not reach ***23 or ***67 or ***67"
    assert "failed" == lines[2]["event"] and "j***@example.com" in json.dumps(lines[2])
    assert {key: lines[3][key] for key in untouched} == untouched
