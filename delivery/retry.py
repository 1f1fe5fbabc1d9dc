"""When to try a delivery again: pure rules on an attempt's outcome, the tests call them directly."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from schemas.policy import Calendar, Span
from workflows.business_time import deadline

Verdict = Literal["delivered", "retry", "slow_retry", "disable", "give_up"]

# Answers that mean "not now": back off and try again (RFC 9110: 408, 425, 429 and every 5xx).
TRANSIENT_CLIENT_ERRORS = frozenset({408, 425, 429})


def webhook_verdict(status: int | None) -> Verdict:
    """2xx delivered; 410 Gone disables the endpoint; other lasting 4xx (401, 403, 404, ...) are retried
    slowly so a misconfigured endpoint is not hammered; 408/425/429, 5xx and no answer back off."""
    if status is None:
        return "retry"
    if 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "disable"
    if 400 <= status < 500 and status not in TRANSIENT_CLIENT_ERRORS:
        return "slow_retry"
    return "retry"


def email_verdict(retryable: bool) -> Verdict:
    """A 5xx SMTP reply is final; a 4xx or a connection failure is retried."""
    return "retry" if retryable else "give_up"


@dataclass(frozen=True)
class Backoff:
    first: timedelta
    cap: timedelta
    slow: timedelta

    def delay(self, attempt: int, verdict: Verdict, retry_after: float | None = None, rng: random.Random | None = None) -> timedelta:
        """The wait before attempt `attempt + 1`: exponential from `first`, doubling, capped, with equal
        jitter (half fixed, half random) so that endpoints that failed together are not retried together;
        never sooner than Retry-After, however long (the give-up age still bounds it), nor than `slow`
        after a lasting 4xx."""
        exponential = min(self.cap.total_seconds(), self.first.total_seconds() * 2 ** max(0, attempt - 1))
        jittered = exponential / 2 + (rng or random).uniform(0, exponential / 2)
        floor = retry_after or 0.0
        if verdict == "slow_retry":
            floor = max(floor, self.slow.total_seconds())
        return timedelta(seconds=max(jittered, floor))


def give_up_at(queued_at: datetime, default: timedelta, policy_age: tuple[Span, Calendar] | None = None) -> datetime:
    """When a notification queued at `queued_at` stops being retried: its policy's `delivery_give_up` on the
    policy's calendar (business units count working time), else the worker's default."""
    if policy_age is None:
        return queued_at + default
    span, calendar = policy_age
    return deadline(queued_at, span, calendar)
