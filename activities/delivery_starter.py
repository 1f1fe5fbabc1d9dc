"""Starts a notification's delivery workflow: once per notification, however often it is asked; and, with a
first try at commit, sends it at once from this worker (activities/first_try.py)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Iterable

import structlog
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from schemas.delivery import DeliveryRequest
from workflows.delivery import WORKFLOW_TYPE, delivery_workflow_id

if TYPE_CHECKING:
    from activities.first_try import FirstTry

log = structlog.get_logger()


class DeliveryStarter:
    def __init__(self, client: Client, task_queue: str, first_try: FirstTry | None = None) -> None:
        self.client = client
        self.task_queue = task_queue
        self.first_try = first_try

    async def start(self, complaint_id: str, notification_ids: Iterable[int]) -> None:
        """Start each notification's delivery; one already running or finished is left alone, so a
        retried write (which finds its rows already there) asks again harmlessly. The first tries begin
        before the starts, which wait on the Temporal server: the busiest process in a burst."""
        notification_ids = list(notification_ids)
        if self.first_try is not None:
            self.first_try.begin(complaint_id, notification_ids)
        await asyncio.gather(*(self._start_one(DeliveryRequest(notification_id=i, complaint_id=complaint_id))
                               for i in sorted(set(notification_ids))))  # fmt: skip

    async def _start_one(self, request: DeliveryRequest) -> None:
        try:
            await self.client.start_workflow(
                WORKFLOW_TYPE,
                request,
                id=delivery_workflow_id(request),
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
        except WorkflowAlreadyStartedError:
            return
        log.debug("delivery started", complaint_id=request.complaint_id, notification_id=request.notification_id)
