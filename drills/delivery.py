"""Delivery in the crash drill: every escalation must reach a real SMTP server and a real signature-checking
webhook receiver, through the kills, the server restart and the database outage, and deduplicate by its
idempotency key to exactly one (a resend after a kill is allowed, a loss is not)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import asyncpg

from tools.harness.delivery_witness import DeliveryWitness as Witness
from tools.harness.delivery_witness import email_key

# Retries quick enough that a delivery caught by the outage lands soon after it.
WORKER_ENV = {"DELIVERY_FIRST_RETRY_SECONDS": "0.5", "DELIVERY_MAX_RETRY_SECONDS": "5", "DELIVERY_ATTEMPT_TIMEOUT_SECONDS": "10"}
# How long the check waits for deliveries still retrying when the cases are done.
SETTLE_SECONDS = 120.0


@dataclass
class DeliveryCheck:
    notifications: int = 0
    delivered: int = 0
    dead: int = 0
    unsettled: int = 0
    webhook_requests: int = 0
    webhook_keys: int = 0
    emails: int = 0
    email_keys: int = 0
    # Every DeliveryWorkflow of the drill's notifications (the undelivered notices' too), for the replay check.
    workflow_ids: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return len(self.problems)


class DeliveryWitness(Witness):
    """The SMTP sink and the webhook receiver, and the roster pointed at them (tools/harness/delivery_witness.py,
    shared with the delivery benchmark); the drill's worker retries quickly, and its check."""

    def __init__(self) -> None:
        super().__init__(sender="drill@complaints.test", domain="drill.test")

    def worker_env(self) -> dict[str, str]:
        return {**super().worker_env(), **WORKER_ENV}

    async def check(self, pool: asyncpg.Pool, complaint_ids: list[str]) -> DeliveryCheck:
        """Wait for the deliveries to settle, then hold every notification against what arrived."""
        assert self.receiver is not None
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            rows = await pool.fetch(
                "SELECT id, status FROM notifications WHERE complaint_id = ANY($1::text[]) AND clock NOT LIKE 'undelivered:%'",
                complaint_ids,
            )
            if all(r["status"] in ("delivered", "dead") for r in rows) or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
        check = DeliveryCheck(notifications=len(rows), workflow_ids=await delivery_workflow_ids(pool, complaint_ids))
        statuses = Counter(r["status"] for r in rows)
        check.delivered, check.dead = statuses["delivered"], statuses["dead"]
        check.unsettled = len(rows) - check.delivered - check.dead
        expected = {f"ntf-{r['id']}" for r in rows}
        hooks = Counter(r.webhook_id for r in self.receiver.delivered())
        mails = Counter(email_key(m) for m in self.sink.messages)
        check.webhook_requests, check.webhook_keys = sum(hooks.values()), len(hooks)
        check.emails, check.email_keys = sum(mails.values()), len(mails)
        for status, count in statuses.items():
            if status != "delivered":
                check.problems.append(f"delivery: {count} notifications ended {status}")
        for channel, arrived in (("webhook", hooks), ("email", mails)):
            lost = sorted(expected - set(arrived))
            if lost:
                check.problems.append(f"delivery: {len(lost)} notifications never arrived by {channel}: {', '.join(lost[:10])}")
            stray = sorted(set(arrived) - expected)
            if stray:
                check.problems.append(f"delivery: {channel} keys of no drill notification: {', '.join(stray[:10])}")
            thrice = sorted(key for key, n in arrived.items() if n > 2)
            if thrice:
                check.problems.append(f"delivery: sent more than twice by {channel}: {', '.join(thrice[:10])}")
        return check


async def delivery_workflow_ids(pool: asyncpg.Pool, complaint_ids: list[str]) -> list[str]:
    from schemas.delivery import DeliveryRequest
    from workflows.delivery import delivery_workflow_id

    rows = await pool.fetch("SELECT id, complaint_id FROM notifications WHERE complaint_id = ANY($1::text[]) ORDER BY id",
                            complaint_ids)  # fmt: skip
    return [delivery_workflow_id(DeliveryRequest(notification_id=r["id"], complaint_id=r["complaint_id"])) for r in rows]
