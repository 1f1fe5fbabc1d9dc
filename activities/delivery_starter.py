"""Starts a notification's delivery workflow: once per notification, however often it is asked."""

from __future__ import annotations

import asyncio
from typing import Iterable

import structlog
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from schemas.delivery import DeliveryRequest
from workflows.delivery import WORKFLOW_TYPE, delivery_workflow_id

log = structlog.get_logger()


class DeliveryStarter:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    async def start(self, complaint_id: str, notification_ids: Iterable[int]) -> None:
        """Start each notification's delivery; one already running or finished is left alone, so a
        retried write (which finds its rows already there) asks again harmlessly."""
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
