"""One ASGI middleware, outermost: the body limit, a problem instead of any traceback, one log line per request.

Plain ASGI rather than Starlette's BaseHTTPMiddleware, which wraps every request in extra tasks and streams.
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from api.problems import Problem, problem_response

log = structlog.get_logger("api")


class LimitsAndLog:
    def __init__(self, app: Any, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        response_started = False

        async def remember_status(message: dict[str, Any]) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
            await send(message)

        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            await problem_response(Problem(413, f"the body is over {self.max_body} bytes"), scope["path"])(scope, receive, remember_status)
        else:
            try:
                await self.app(scope, receive, remember_status)
            except Exception as error:  # never a traceback to the caller
                log.exception("request failed", error=type(error).__name__)
                if not response_started:
                    await problem_response(Problem(500, "the request failed inside the API"), scope["path"])(scope, receive, remember_status)
        route = scope.get("route")
        log.info(
            "request",
            method=scope["method"],
            route=getattr(route, "path", scope["path"]),
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            complaint_id=scope.get("path_params", {}).get("complaint_id"),
        )
