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

from stack.ports import free_port

BIND_ATTEMPTS = 3


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
        self.port = free_port()
        self.handler = _Handler()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

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

    def start(self) -> "SmtpSink":
        """Listen; on a port picked free but bound by someone else before us, on a fresh one."""
        for attempt in range(1, BIND_ATTEMPTS + 1):
            try:
                self._controller.start()
                return self
            except OSError as error:
                if error.errno != errno.EADDRINUSE or attempt == BIND_ATTEMPTS:
                    raise
            self.port = free_port()
            self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        raise AssertionError("unreachable")  # the loop returns or raises

    def stop(self) -> None:
        self._controller.stop()

    async def __aenter__(self) -> "SmtpSink":
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[EmailMessage]:
        """Wait until at least `count` messages arrived; TimeoutError naming how many did."""
        deadline = time.monotonic() + timeout
        while len(self.handler.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.handler.received)} of {count} messages arrived in {timeout} s")
            await asyncio.sleep(0.05)
        return self.messages
