"""One HTTP request to a test's own server (the codec server), without a client library."""

from __future__ import annotations

import urllib.error
import urllib.request


def http_call(url: str, body: bytes | None, headers: dict[str, str] | None = None, method: str = "POST"):  # type: ignore[no-untyped-def]
    """(status, headers, body) of the answer, an HTTP error's included; the body is sent with a POST only."""
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
