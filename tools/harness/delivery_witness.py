"""A run's witness of delivery: a real SMTP sink and a signature-checking webhook receiver, the roster
pointed at them, and the worker's environment that sends there. The crash drill holds every escalation
against what arrived; the delivery benchmark times the arrivals.

    witness = DeliveryWitness()
    await witness.start(cleanup)                  # an AsyncExitStack stops both
    await witness.wire_roster(pool)               # before the worker starts
    worker env: {**witness.worker_env(), ...}
    witness.email_arrivals(), witness.webhook_arrivals()   # {"ntf-<id>": first arrival, time.time()}
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from email.message import EmailMessage

import asyncpg

from activities.delivery_store import endpoint_secrets
from tools.harness.smtp_sink import SmtpSink
from tools.harness.webhook_receiver import WebhookReceiver, receiving


def email_key(message: EmailMessage) -> str:
    """A message's idempotency key: `<ntf-42.x@domain>` is ntf-42 (docs/delivery.md)."""
    return str(message["Message-ID"] or "").split(".")[0].lstrip("<")


class DeliveryWitness:
    """The SMTP sink and the webhook receiver, and the roster pointed at them."""

    def __init__(self, sender: str = "witness@complaints.test", domain: str = "witness.test") -> None:
        self.sink = SmtpSink()
        self.receiver: WebhookReceiver | None = None
        self.sender = sender
        self.domain = domain
        # Each agent's channels as the first wire_roster or silence_roster found them, for restore_roster.
        self._before: list[tuple[str, str | None, str | None, str | None]] = []

    async def start(self, cleanup: AsyncExitStack) -> None:
        await cleanup.enter_async_context(self.sink)
        self.receiver = await cleanup.enter_async_context(receiving())

    def worker_env(self) -> dict[str, str]:
        """What a worker needs to send email to the sink (webhooks go where the roster says)."""
        return {"SMTP_URL": self.sink.url, "SMTP_FROM": self.sender}

    async def wire_roster(self, pool: asyncpg.Pool) -> None:
        """Give every agent an address and a webhook on the witness, and the receiver their secrets."""
        assert self.receiver is not None
        for agent_id in await self._remember(pool):
            url = self.receiver.url(f"/{agent_id}")
            await pool.execute("UPDATE agents SET email = $2, webhook_url = $3 WHERE id = $1",
                               agent_id, f"{agent_id}@{self.domain}", url)  # fmt: skip
            self.receiver.endpoint(f"/{agent_id}").secrets = await endpoint_secrets(pool, url)

    async def silence_roster(self, pool: asyncpg.Pool) -> None:
        """No agent has a channel (until wire_roster): an escalation meanwhile stays queued, undelivered."""
        await self._remember(pool)
        await pool.execute("UPDATE agents SET email = NULL, webhook_url = NULL, chat_webhook_url = NULL")

    async def restore_roster(self, pool: asyncpg.Pool) -> None:
        """Put back every agent's channels as the first wire_roster or silence_roster found them."""
        for agent_id, email, webhook_url, chat_webhook_url in self._before:
            await pool.execute("UPDATE agents SET email = $2, webhook_url = $3, chat_webhook_url = $4 WHERE id = $1",
                               agent_id, email, webhook_url, chat_webhook_url)  # fmt: skip
        self._before = []

    async def _remember(self, pool: asyncpg.Pool) -> list[str]:
        rows = await pool.fetch("SELECT id, email, webhook_url, chat_webhook_url FROM agents ORDER BY id")
        if not self._before:
            self._before = [(r["id"], r["email"], r["webhook_url"], r["chat_webhook_url"]) for r in rows]
        return [r["id"] for r in rows]

    def email_arrivals(self) -> dict[str, float]:
        """Each key's first accepted message: when (time.time()) it reached the sink."""
        first: dict[str, float] = {}
        for received in list(self.sink.received):
            key = email_key(received.message)
            first[key] = min(first.get(key, received.at), received.at)
        return first

    def webhook_arrivals(self) -> dict[str, float]:
        """Each webhook-id's first request answered 2xx with a good signature: when it was answered."""
        assert self.receiver is not None
        first: dict[str, float] = {}
        for request in self.receiver.delivered():
            if request.webhook_id:
                first[request.webhook_id] = min(first.get(request.webhook_id, request.at), request.at)
        return first
