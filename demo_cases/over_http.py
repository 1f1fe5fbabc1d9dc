"""A case worked through the HTTP API, as a support system would: every call is printed as it is made.

The agent and the customer each hold a bearer token of the embedded development issuer; the actor comes
from the token, so no body names one.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

from demo_cases.customers import customer_id


def _call(base_url: str, method: str, path: str, token: str, body: dict[str, Any] | None) -> tuple[int, Any]:
    request = urllib.request.Request(
        base_url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


async def call(base_url: str, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> Any:
    status, answer = await asyncio.to_thread(_call, base_url, method, path, token, body)
    shown = {k: answer[k] for k in ("outcome", "owner", "status", "detail") if isinstance(answer, dict) and k in answer}
    print(f"  {method} {path} -> {status} {json.dumps(shown) if shown else ''}".rstrip())
    if status >= 400:
        raise RuntimeError(f"{method} {path} answered {status}: {answer}")
    return answer


async def worked_over_http(base_url: str, tokens: dict[str, str], complaint_id: str) -> dict[str, Any]:
    """A broadband outage credit, start to close over HTTP; returns the closed case's state."""
    customer = customer_id("CU-7781", complaint_id)
    agent, customer_token = tokens["c.nguyen"], tokens[f"customer:{customer}"]
    await call(base_url, "POST", "/cases", agent, {
        "complaint_id": complaint_id,
        "customer": {"customer_id": customer, "name": "Lin Zhao", "email": "lin.zhao@example.org"},
        "channel": "web", "category": "billing", "severity": "medium",
        "summary": "Billed in full for a month with a four-day outage", "received_by": "c.nguyen",
    })  # fmt: skip
    path = f"/cases/{complaint_id}/actions"
    await call(base_url, "POST", f"{path}/accept_ownership", agent, {})
    await call(base_url, "POST", f"{path}/contact_customer", agent, {"channel": "email", "summary": "Confirmed the outage dates"})
    await call(base_url, "POST", f"{path}/propose_resolution", agent, {
        "resolution": "Four days' service credited on the next bill",
        "root_cause": "Outage credits are not applied automatically to the affected accounts",
    })  # fmt: skip
    await call(base_url, "POST", f"{path}/confirm_resolution", customer_token, {"satisfied": True, "channel": "web"})
    return await call(base_url, "GET", f"/cases/{complaint_id}", customer_token)
