"""Webhooks signed as Standard Webhooks (standardwebhooks): one request, one attempt.

Headers: `webhook-id` (the delivery id: a receiver deduplicates by it),
`webhook-timestamp`, and `webhook-signature`, one `v1,` signature per secret
the endpoint has (two while a secret rotates). A receiver verifies with
`standardwebhooks.Webhook(secret).verify(body, headers)` (docs/delivery.md).
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

import httpx
from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh endpoint secret, in the specification's `whsec_` + base64 form."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class WebhookAnswer:
    """What the endpoint said: its status code and Retry-After (seconds), or the error that stopped the request."""

    status: int | None
    retry_after: float | None = None
    error: str | None = None


def signed_headers(delivery_id: str, body: bytes, endpoint_secrets: Sequence[str], at: datetime | None = None) -> dict[str, str]:
    at = at or datetime.now(timezone.utc)
    signatures = " ".join(Webhook(secret).sign(delivery_id, at, body) for secret in endpoint_secrets)
    return {
        "content-type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


async def post_webhook(
    http: httpx.AsyncClient, url: str, delivery_id: str, payload: dict[str, Any], endpoint_secrets: Sequence[str]
) -> WebhookAnswer:
    body = body_of(payload)
    headers = signed_headers(delivery_id, body, endpoint_secrets) if endpoint_secrets else {"content-type": "application/json"}
    try:
        response = await http.post(url, content=body, headers=headers)
    except httpx.HTTPError as error:
        return WebhookAnswer(status=None, error=f"{type(error).__name__}: {error}"[:500])
    return WebhookAnswer(status=response.status_code, retry_after=retry_after_seconds(response.headers.get("retry-after")))


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date (RFC 9110 10.2.3); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())
