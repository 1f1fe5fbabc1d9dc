"""Wakes a case's feed to each subscription (workflows/case_feed.py): signal-with-start, so a running feed
reads again and a finished one starts a new run from its cursor."""

from __future__ import annotations

import asyncio
from typing import Iterable

import structlog
from temporalio.client import Client

from schemas.case_feed import CaseFeed
from workflows.case_feed import WAKE_SIGNAL, WORKFLOW_TYPE, case_feed_workflow_id

log = structlog.get_logger()


class CaseFeedStarter:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    async def wake(self, complaint_id: str, subscription_ids: Iterable[int]) -> None:
        """Wake (or start) the case's feed to each subscription; asking twice is harmless (a retried write does)."""
        await asyncio.gather(*(self._wake_one(s, complaint_id) for s in sorted(set(subscription_ids))))

    async def _wake_one(self, subscription_id: int, complaint_id: str) -> None:
        await self.client.start_workflow(
            WORKFLOW_TYPE,
            CaseFeed(subscription_id=subscription_id, complaint_id=complaint_id),
            id=case_feed_workflow_id(subscription_id, complaint_id),
            task_queue=self.task_queue,
            start_signal=WAKE_SIGNAL,
        )
        log.debug("case feed woken", complaint_id=complaint_id, subscription_id=subscription_id)
