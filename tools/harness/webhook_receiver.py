"""A real webhook receiver that checks Standard Webhooks signatures: for the tests, the demo, the drill
and the benchmark.

Each path is an endpoint with its secrets (set once the engine has made them)
and a script of answers: fail the next n requests with a status (and
Retry-After), or always answer one status. Every request is kept with whether
its signature verified; requests for one webhook-id that overlap in time are
counted, so a test can show that two workers never sent one notification at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.serve import served


@dataclass
class Request:
    path: str
    webhook_id: str | None
    body: dict[str, Any] | None
    verified: bool
    answered: int
    at: float  # time.time() when it arrived


@dataclass
class Endpoint:
    secrets: list[str] = field(default_factory=list)
    fail_next: int = 0
    fail_status: int = 500
    retry_after: str | None = None
    always: int | None = None
    hold: float = 0.0  # seconds to wait before answering
    hold_first: float = 0.0  # seconds to wait before answering the first request of each webhook-id
    # Called with the request once it has fully arrived, before it is answered (a test kills the sender here).
    on_arrival: Any = None


class WebhookReceiver:
    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = defaultdict(Endpoint)
        self.requests: list[Request] = []
        self.overlaps = 0
        self._in_flight: Counter[str] = Counter()
        self._seen: set[str] = set()
        self.base_url = ""

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def endpoint(self, path: str) -> Endpoint:
        return self.endpoints["/" + path.lstrip("/")]

    def delivered(self, path: str | None = None) -> list[Request]:
        """Requests answered 2xx with a good signature (path None: every endpoint's)."""
        return [r for r in self.requests if r.verified and 200 <= r.answered < 300 and (path is None or r.path == "/" + path.lstrip("/"))]

    def unique_ids(self, path: str | None = None) -> set[str]:
        """What a receiver that deduplicates by webhook-id keeps."""
        return {r.webhook_id for r in self.delivered(path) if r.webhook_id}

    async def wait_for(self, count: int, path: str | None = None, timeout: float = 30.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        while len(self.delivered(path)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.delivered(path))} of {count} webhooks delivered in {timeout} s")
            await asyncio.sleep(0.05)
        return self.delivered(path)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        path = scope["path"]
        endpoint = self.endpoints[path]
        webhook_id = headers.get("webhook-id")
        verified, parsed = self._verify(endpoint, body, headers)
        if webhook_id:
            if self._in_flight[webhook_id]:
                self.overlaps += 1
            self._in_flight[webhook_id] += 1
        first = webhook_id is not None and webhook_id not in self._seen
        if webhook_id:
            self._seen.add(webhook_id)
        try:
            if endpoint.on_arrival is not None:
                await endpoint.on_arrival(webhook_id)
            if endpoint.hold or (first and endpoint.hold_first):
                await asyncio.sleep(endpoint.hold + (endpoint.hold_first if first else 0.0))
            status, extra = self._answer(endpoint, verified)
        finally:
            if webhook_id:
                self._in_flight[webhook_id] -= 1
        self.requests.append(Request(path, webhook_id, parsed, verified, status, time.time()))
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain"), *extra]})
        await send({"type": "http.response.body", "body": b"" if status in (204, 304) else b"done"})

    @staticmethod
    def _verify(endpoint: Endpoint, body: bytes, headers: dict[str, str]) -> tuple[bool, dict[str, Any] | None]:
        for secret in endpoint.secrets:
            try:
                return True, Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
        try:
            return False, json.loads(body)
        except ValueError:
            return False, None

    @staticmethod
    def _answer(endpoint: Endpoint, verified: bool) -> tuple[int, list[tuple[bytes, bytes]]]:
        if not verified:
            return 401, []
        if endpoint.always is not None:
            return endpoint.always, []
        if endpoint.fail_next > 0:
            endpoint.fail_next -= 1
            extra = [(b"retry-after", endpoint.retry_after.encode())] if endpoint.retry_after else []
            return endpoint.fail_status, extra
        return 204, []


@asynccontextmanager
async def receiving() -> AsyncIterator[WebhookReceiver]:
    """A WebhookReceiver served on a free loopback port in this event loop."""
    receiver = WebhookReceiver()
    async with served(receiver) as base_url:
        receiver.base_url = base_url
        yield receiver
