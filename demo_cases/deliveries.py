"""The demo's witnesses of delivery: an SMTP sink and a webhook receiver on loopback, the roster pointed
at them, and what arrived printed after the live escalation and after a case's letters.

The crash drill and the benchmark have their own witness (tools/harness/delivery_witness.py), which rewires
every agent's rows to it; the demo instead gives only the supervisors and managers a webhook in the roster it
loads, so that its agents keep email alone."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

from activities.delivery_store import endpoint_secrets
from activities.notifications_store import list_notifications
from complaint_client import ComplaintClient
from delivery.settings import DeliverySettings, SmtpSettings
from schemas import Roster
from tools.harness.delivery_witness import email_key
from tools.harness.smtp_sink import SmtpSink
from tools.harness.webhook_receiver import WebhookReceiver, receiving

SENDER = "escalations@demo.example"


class Witness:
    def __init__(self, sink: SmtpSink, receiver: WebhookReceiver) -> None:
        self.sink = sink
        self.receiver = receiver

    def settings(self, public_url: str) -> DeliverySettings:
        return DeliverySettings(smtp=SmtpSettings(host="127.0.0.1", port=self.sink.port, sender=SENDER), public_url=public_url)

    def roster(self, roster: Roster) -> Roster:
        """The roster with each supervisor's and manager's webhook on the receiver (agents have email only)."""
        agents = [
            agent.model_copy(update={"webhook_url": self.receiver.url(f"/{agent.id}")}) if agent.role != "agent" else agent
            for agent in roster.agents
        ]
        return roster.model_copy(update={"agents": agents})

    async def know_secrets(self, pool, roster: Roster) -> None:  # type: ignore[no-untyped-def]
        for agent in roster.agents:
            if agent.webhook_url:
                self.receiver.endpoint(f"/{agent.id}").secrets = await endpoint_secrets(pool, agent.webhook_url)


@asynccontextmanager
async def witnessed() -> AsyncIterator[Witness]:
    async with SmtpSink() as sink, receiving() as receiver:
        yield Witness(sink, receiver)


async def print_deliveries(witness: Witness, pool, complaint_id: str, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    """Wait for the case's notifications to settle, then show each email and webhook call that carried them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        notices = await list_notifications(pool, complaint_id=complaint_id, pending_only=False)
        if all(n.status in ("delivered", "dead", "queued") and n.attempts for n in notices) or loop.time() > deadline:
            break
        await asyncio.sleep(0.2)
    keys = {f"ntf-{n.id}" for n in notices}
    mails = [r for r in witness.sink.received if email_key(r.message) in keys]
    hooks = [r for r in witness.receiver.requests if r.webhook_id in keys]
    print(f"\n  Delivered: {len(mails)} email(s) to the SMTP sink on 127.0.0.1:{witness.sink.port}, "
          f"{len(hooks)} webhook call(s) to the receiver on {witness.receiver.base_url}")  # fmt: skip
    for received in mails:
        message = received.message
        print(f"    mail    to {', '.join(received.recipients)}  \"{message['Subject']}\"  Message-ID {message['Message-ID']}")
    for call in hooks:
        signature = "signature verified" if call.verified else "SIGNATURE NOT VERIFIED"
        kind = call.body.get("type") if call.body else "?"
        print(f"    webhook {call.path}  webhook-id {call.webhook_id}  {kind}  {signature}  answered {call.answered}")
    for notice in notices:
        print(f"    notification {notice.id}: {notice.status} after {notice.attempts} attempt(s)")


async def print_letters(witness: Witness, engine: ComplaintClient, complaint_id: str, timeout: float = 20.0) -> None:
    """Once no letter is still being sent: each letter of the case's policy, and each one's email at the sink."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (state := await engine.state(complaint_id)).letters and loop.time() < deadline:
        if not any(letter.status == "sending" for letter in state.letters):
            break
        await asyncio.sleep(0.2)
    print("\n  Letters:")
    for letter in state.letters:
        how = f" by {letter.channel}" if letter.channel else ""
        why = f" ({letter.reason})" if letter.reason else ""
        print(f"    {letter.name:<18} {letter.status}{how}{why}")
    for received in witness.sink.received:
        message = received.message
        if message["X-Complaint-Id"] == complaint_id:
            print(f"    mail    to {', '.join(received.recipients)}  \"{message['Subject']}\"  ({str(message['X-Complaint-Letter']).strip()})")
