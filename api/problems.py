"""RFC 9457 `application/problem+json` responses: every refusal and failure says what, never a traceback."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

PROBLEM_TYPE = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    422: "Unprocessable request",
    500: "Internal error",
    503: "Service unavailable",
}


class Problem(Exception):
    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": _TITLES.get(problem.status, "Error"), "status": problem.status}
    body["detail"] = problem.detail
    if instance:
        body["instance"] = instance
    body.update(problem.extra)
    return JSONResponse(body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_TYPE)


def for_rejection(kind: str, message: str) -> Problem:
    """The engine's refusal as HTTP: a reused request_id 409, NotAllowed 403, anything else invalid 422."""
    if "was already used for" in message:
        return Problem(409, message, kind=kind)
    if kind == "NotAllowed":
        return Problem(403, message, kind=kind)
    return Problem(422, message, kind=kind)


def unavailable(what: str) -> Problem:
    return Problem(503, f"{what} is unavailable; try again shortly", headers={"Retry-After": "5"})


def documented_problems() -> dict[int | str, dict[str, Any]]:
    """The problem responses every route may give, for the OpenAPI document."""
    schema = {
        "type": "object",
        "properties": {k: {"type": "string"} for k in ("type", "title", "detail", "instance", "kind")} | {"status": {"type": "integer"}},
        "required": ["type", "title", "status", "detail"],
    }
    return {
        status: {"description": title, "content": {PROBLEM_TYPE: {"schema": schema}}}
        for status, title in _TITLES.items()
        if status != 500
    }
