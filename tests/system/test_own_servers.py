"""Servers of a run's own start on a port picked free even when someone binds it first: the SDK's test
servers (tests/support/sdk_servers.py) and the SMTP sink (tools/harness/smtp_sink.py)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.testing import WorkflowEnvironment

import tools.harness.smtp_sink
from stack.ports import START_ATTEMPTS, free_port
from tests.support.sdk_servers import start_with_retries
from tools.harness.smtp_sink import SmtpSink

TEST_SERVER = str(Path(sys.executable).parent / "temporal-test-server")


async def test_a_test_server_whose_port_was_taken_is_started_again_on_another() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))  # bound, not listening: the server cannot bind it
        ports = iter([squatter.getsockname()[1], None])  # None: the SDK picks a free one
        env = await start_with_retries(
            lambda: WorkflowEnvironment.start_time_skipping(test_server_existing_path=TEST_SERVER, port=next(ports))
        )
        try:
            await env.client.workflow_service.get_system_info(GetSystemInfoRequest())
        finally:
            await env.shutdown()
    assert next(ports, "spent") == "spent"


async def test_only_a_failed_start_is_tried_again_and_only_so_often() -> None:
    calls = 0

    async def failing(message: str) -> WorkflowEnvironment:
        nonlocal calls
        calls += 1
        raise RuntimeError(message)

    with pytest.raises(RuntimeError, match="not a start"):
        await start_with_retries(lambda: failing("not a start failure"))
    assert calls == 1

    calls = 0
    with pytest.raises(RuntimeError, match="Failed starting test server"):
        await start_with_retries(lambda: failing("Failed starting test server: did not start within 5s"))
    assert calls == START_ATTEMPTS


async def test_the_smtp_sink_listens_on_a_fresh_port_when_its_pick_was_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        picks = iter([taken])
        monkeypatch.setattr(tools.harness.smtp_sink, "free_port", lambda: next(picks, None) or free_port())
        async with SmtpSink() as sink:
            assert sink.port != taken
            with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as conn:
                assert conn.recv(100).startswith(b"220 ")
