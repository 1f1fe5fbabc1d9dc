"""What the activities that send to the outside share: their log context, the name they record on
each attempt, one HTTP client per worker timed by the delivery settings, and the cut-off of a send."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import structlog
from temporalio import activity

from delivery.settings import DeliverySettings

T = TypeVar("T")


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


async def cut_off(limit: timedelta, send: Awaitable[T], timed_out: Callable[[str], T]) -> T:
    """The send's answer, or timed_out(why) once it has run for `limit`: the route's claim outlasts it
    (activities/route_claims.py), so no send is still on the wire when another may start."""
    seconds = limit.total_seconds()
    try:
        async with asyncio.timeout(seconds):
            return await send
    except TimeoutError:
        return timed_out(f"no answer within {seconds:g} s")
