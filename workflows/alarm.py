"""Alarm: one durable timer for one instant, kept while the instant stays and replaced when it moves.

The case's main loop used to start a timer each time it went to sleep and cancel it each time work
woke it. Its timer commands then depended on which states the loop happened to see: an activity's
result that reached a worker alone (a restarted worker catching up, issue 17) started a timer that
an update in the same workflow task cancelled, a timer id a replay never used. An alarm's commands
depend only on the instants it is set to, and the workflow sets it right where an instant changes
(docs/decisions/0004-timers-follow-instants.md).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow

# Temporal timers have millisecond resolution: never ask for less, never fire early.
_SHORTEST = 0.001


class Alarm:
    def __init__(self, name: str) -> None:
        self.name = name
        self.at: datetime | None = None
        self._timer: asyncio.Future[None] | None = None
        self._heard = False

    def set(self, at: datetime | None) -> None:
        """Ring at `at` (None: never). Setting the instant it already has changes nothing."""
        if at == self.at:
            return
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
        self.at, self._timer, self._heard = at, None, False
        if at is not None and at > workflow.now():
            delay = max((at - workflow.now()).total_seconds(), _SHORTEST)
            self._timer = asyncio.ensure_future(workflow.sleep(delay, summary=self.name))

    def rang(self) -> bool:
        """Whether the instant has come and the alarm was not heard since: its timer fired, or it was due when set.

        Only the timer tells, never the clock: a task that comes after the instant but before the
        timer's firing reaches the worker leaves the alarm quiet, so its timer is never cancelled
        after it fired (which the time-skipping test server refuses, temporalio/sdk-java#3088).
        """
        if self.at is None or self._heard:
            return False
        return self._timer is None or self._timer.done()

    def hear(self) -> None:
        """The owner handled the ring: rang() stays False until the alarm is set to another instant."""
        if self.rang():
            self._heard = True
