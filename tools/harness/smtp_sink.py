"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives: for the tests, the demo, the
drill and the benchmark. It can be told to refuse the next messages with a transient 451."""

from __future__ import annotations

import asyncio
import errno
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from stack.ports import free_port, start_on_free_ports


@dataclass
class Received:
    message: EmailMessage
    recipients: list[str]
    at: float  # time.time() when the message was accepted


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    refuse_next: int = 0
    refused: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_next > 0:
            self.refuse_next -= 1
            self.refused += 1
            return "451 4.3.0 try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.received.append(Received(message, list(envelope.rcpt_tos), time.time()))  # type: ignore[arg-type]
        return "250 OK"


class SmtpSink:
    """`async with SmtpSink() as sink:` then SMTP_URL = sink.url; sink.messages holds what arrived."""

    def __init__(self) -> None:
        self.port = 0  # picked free when the sink starts
        self.handler = _Handler()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    @property
    def messages(self) -> list[EmailMessage]:
        return [r.message for r in self.handler.received]

    def refuse(self, count: int) -> None:
        """Answer the next `count` messages with 451 (a transient refusal)."""
        self.handler.refuse_next = count

    def _listen(self, port: int) -> None:
        controller = Controller(self.handler, hostname="127.0.0.1", port=port)
        controller.start()
        self.port, self._controller = port, controller

    async def __aenter__(self) -> "SmtpSink":
        await start_on_free_ports(lambda: asyncio.to_thread(self._listen, free_port()), _address_in_use, "SMTP sink")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._controller is not None:
            await asyncio.to_thread(self._controller.stop)

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[EmailMessage]:
        """Wait until at least `count` messages arrived; TimeoutError naming how many did."""
        deadline = time.monotonic() + timeout
        while len(self.handler.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.handler.received)} of {count} messages arrived in {timeout} s")
            await asyncio.sleep(0.05)
        return self.messages


def _address_in_use(error: Exception) -> bool:
    return isinstance(error, OSError) and error.errno == errno.EADDRINUSE
