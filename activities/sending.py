"""What the activities that send to the outside share: their log context, the name they record on
each attempt, and one HTTP client per worker timed by the delivery settings."""

from __future__ import annotations

import os
import socket
from typing import Any

import httpx
import structlog
from temporalio import activity

from delivery.settings import DeliverySettings


def activity_log(**context: Any) -> Any:
    """A logger bound to `context` and, inside an activity, to its type, attempt and workflow id."""
    if activity.in_activity():
        info = activity.info()
        context.update(activity=info.activity_type, attempt=info.attempt, workflow_id=info.workflow_id)
    return structlog.get_logger().bind(**context)


def worker_name() -> str:
    """host:pid, recorded on each attempt, so an attempt log shows which process sent what."""
    return f"{socket.gethostname()}:{os.getpid()}"


class HttpSender:
    """One httpx client, made on first use: a request may take DELIVERY_REQUEST_TIMEOUT_SECONDS, else 80% of
    the attempt timeout, so an attempt ends before Temporal retries it."""

    def __init__(self, settings: DeliverySettings) -> None:
        self.settings = settings
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            timeout = self.settings.webhook_timeout
            self._client = httpx.AsyncClient(timeout=timeout.total_seconds(), follow_redirects=False)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
