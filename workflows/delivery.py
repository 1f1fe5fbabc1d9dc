"""DeliveryWorkflow: one notification reaches its recipient on every channel they have.

Started by record_case_events as soon as an escalation's row is committed
(activities/delivery_starter.py), with an id built from the notification, so
a retried write starts it once. The workflow only sequences; each step is an
activity (activities/delivery_activities.py):

1. plan_delivery (local): the recipient's routes (email, webhook, chat webhook) and the timing, fixed in history;
2. deliver, once per route, in parallel: one attempt per Temporal attempt. Temporal retries it with the
   delay the activity names (exponential with jitter, Retry-After, slow for a lasting 4xx), until the
   notification's give-up time bounds it (schedule-to-close);
3. finish_delivery (local): the row becomes delivered (a route took it) or dead (every route gave up), and a
   dead row queues a notice for the case's supervisor on another channel.

Two workers never send one notification at once: one workflow, one attempt
per route at a time, and deliver claims its route before it sends
(activities/route_claims.py: a timed-out attempt still on the wire makes the next wait).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from schemas.delivery import (
        ChannelDelivery,
        ChannelResult,
        DeliveryFinish,
        DeliveryOutcome,
        DeliveryPlan,
        DeliveryRequest,
        Route,
    )
    from workflows.activity_options import DB_RETRY, DB_TIMEOUT

WORKFLOW_TYPE = "DeliveryWorkflow"
WORKFLOW_ID_PREFIX = "notification-"
# A route whose give-up time has passed still gets one attempt: an escalation is never dropped unsent.
LAST_CHANCE = timedelta(seconds=5)
# The failure type deliver raises when a route cannot succeed (410 Gone, a 5xx SMTP reply).
GAVE_UP = "DeliveryGaveUp"


def send_retry_policy(first_retry: timedelta, max_retry: timedelta) -> RetryPolicy:
    """How a sending activity is retried: it names each next delay itself (delivery/retry.py); these bound
    the rest, and GAVE_UP ends it. Shared by the notifications' delivery and the case feeds."""
    return RetryPolicy(initial_interval=first_retry, maximum_interval=max_retry, non_retryable_error_types=[GAVE_UP])


def send_failure(error: ActivityError) -> str:
    """Why a sending activity ended unsent, in at most 500 characters: its last failure, and for a give-up
    age that ran out, the timeout with the last attempt's failure (its cause)."""
    cause = error.cause
    reason = str(cause) if cause is not None else str(error)
    if cause is not None and cause.cause is not None:
        reason = f"{reason}: {cause.cause}"
    return reason[:500] or type(cause).__name__


def delivery_workflow_id(request: DeliveryRequest) -> str:
    return f"{WORKFLOW_ID_PREFIX}{request.complaint_id}-{request.notification_id}"


@workflow.defn(name=WORKFLOW_TYPE)
class DeliveryWorkflow:
    @workflow.run
    async def run(self, request: DeliveryRequest) -> DeliveryOutcome:
        # Plan and finish are short database calls: local activities, so the server records one marker each
        # instead of scheduling, matching and completing a task (decision 0009).
        plan = await workflow.execute_local_activity(
            "plan_delivery", request, result_type=DeliveryPlan, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY
        )
        if not plan.routes:
            return DeliveryOutcome(notification_id=request.notification_id, status="queued")
        results = await asyncio.gather(*(self._deliver(request, plan, route) for route in plan.routes))
        return await workflow.execute_local_activity(
            "finish_delivery",
            DeliveryFinish(notification_id=request.notification_id, complaint_id=request.complaint_id, results=list(results)),
            result_type=DeliveryOutcome,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )

    async def _deliver(self, request: DeliveryRequest, plan: DeliveryPlan, route: Route) -> ChannelResult:
        left = max(plan.give_up_at - workflow.now(), LAST_CHANCE)
        try:
            await workflow.execute_activity(
                "deliver",
                ChannelDelivery(notification_id=request.notification_id, delivery_id=plan.delivery_id, route=route),
                schedule_to_close_timeout=left,
                start_to_close_timeout=plan.attempt_timeout,
                retry_policy=send_retry_policy(plan.first_retry, plan.max_retry),
            )
        except ActivityError as error:
            return ChannelResult(route=route, delivered=False, error=send_failure(error))
        return ChannelResult(route=route, delivered=True)
