"""CaseFeedWorkflow: one case's events reach one subscription, one at a time, in seq order.

record_case_events wakes it (signal-with-start, activities/case_feed_starter.py)
once its write is committed, for each active subscription that wants a type
in the batch. The workflow id, `feed-<subscription id>-<complaint id>`, makes
one feed per subscription and case, so a case's event N+1 never reaches an
endpoint before N: the feed sends N (retrying as the notifications' delivery
does) and reads N+1 only once N is delivered. The cursor (the last seq
delivered) lives in `subscription_cursors`, moved by each delivery, so a later
run starts where the last one ended.

1. next_case_events: the events after the cursor that the subscription wants (recorded since it was created);
2. deliver_case_event, for each in turn: one attempt per Temporal attempt, retried with the delay it names
   until the event has waited DELIVERY_GIVE_UP_SECONDS since its first attempt;
3. with nothing left, wait CASE_FEED_IDLE_SECONDS for a wake-up, then end (the next event starts a new run).

An event that is never delivered (its give-up time passed, or the endpoint answered 410 Gone) is dead:
stop_case_feed marks the feed stopped at it, and the feed ends. Skipping it would deliver later events
out of order; `starter.py webhooks resume NAME` sends the feed on from that event.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from schemas.case_feed import CaseEventDelivery, CaseFeed, FeedBatch, FeedEnd, FeedRead, FeedStop
    from workflows.activity_options import DB_RETRY, DB_TIMEOUT
    from workflows.delivery import send_failure, send_retry_policy

WORKFLOW_TYPE = "CaseFeedWorkflow"
WAKE_SIGNAL = "events_recorded"


def case_feed_workflow_id(subscription_id: int, complaint_id: str) -> str:
    return f"feed-{subscription_id}-{complaint_id}"


@workflow.defn(name=WORKFLOW_TYPE)
class CaseFeedWorkflow:
    def __init__(self) -> None:
        self.wakeups = 0

    @workflow.signal(name=WAKE_SIGNAL)
    def events_recorded(self, *_: Any) -> None:
        """New events of the case are committed: read again. Takes anything and never raises."""
        self.wakeups += 1

    @workflow.run
    async def run(self, feed: CaseFeed) -> FeedEnd:
        cursor = feed.after
        delivered = 0
        while True:
            seen = self.wakeups
            batch: FeedBatch = await workflow.execute_activity(
                "next_case_events",
                FeedRead(subscription_id=feed.subscription_id, complaint_id=feed.complaint_id, after=cursor),
                result_type=FeedBatch,
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
            )
            cursor = batch.cursor
            if batch.status != "active":
                return FeedEnd(status=batch.status, cursor=cursor)
            if not batch.seqs:
                if not await self._woken_since(seen, batch.idle):
                    return FeedEnd(status="idle", cursor=cursor)
                continue
            for seq in batch.seqs:
                outcome = await self._deliver(feed, seq, batch)
                if outcome != "delivered":
                    return FeedEnd(status=outcome, cursor=cursor, stopped_seq=seq if outcome == "stopped" else None)
                cursor = seq
                delivered += 1
            if delivered >= batch.events_per_run or workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(CaseFeed(subscription_id=feed.subscription_id, complaint_id=feed.complaint_id, after=cursor))

    async def _woken_since(self, seen: int, idle: timedelta) -> bool:
        """Wait up to `idle` for a wake-up after `seen`; whether one came (decided on the count, not on
        which of the timer and the signal the activation resolved first)."""
        try:
            await workflow.wait_condition(lambda: self.wakeups != seen, timeout=idle)
        except asyncio.TimeoutError:
            pass
        return self.wakeups != seen

    async def _deliver(self, feed: CaseFeed, seq: int, batch: FeedBatch) -> str:
        """delivered, unsubscribed, or stopped (the event is dead and the feed marked stopped at it)."""
        try:
            return await workflow.execute_activity(
                "deliver_case_event",
                CaseEventDelivery(subscription_id=feed.subscription_id, complaint_id=feed.complaint_id, seq=seq),
                result_type=str,
                schedule_to_close_timeout=batch.give_up,
                start_to_close_timeout=batch.attempt_timeout,
                retry_policy=send_retry_policy(batch.first_retry, batch.max_retry),
            )
        except ActivityError as error:
            reason = send_failure(error)
        await workflow.execute_activity(
            "stop_case_feed",
            FeedStop(subscription_id=feed.subscription_id, complaint_id=feed.complaint_id, seq=seq, error=reason),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        return "stopped"
