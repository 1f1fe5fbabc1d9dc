"""create_app: the HTTP API's routes, thin over ComplaintClient (actions, live state) and PostgreSQL (lists).

The actor always comes from the bearer token (api.auth); a body naming another is 403. The client the app
is given signs each Temporal call's actor assertion (identity.interceptors), so a worker in signed mode
sees who the API vouched for.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

import asyncpg
from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.notifications_store import acknowledge, get_notifications
from api.auth import Authenticator, Principal
from api.middleware import LimitsAndLog
from api.problems import Problem, documented_problems, for_rejection, problem_response, unavailable
from api.reads import CaseFilters, CasePage, NotificationPage, list_cases, list_notifications_page
from api.views import customer_state, customer_timeline
from api.visibility import Viewer, viewer_for
from complaint_client import CommandRejected, ComplaintClient
from schemas import CaseState, ComplaintIntake, TimelineEvent
from schemas.actions import ACTIONS
from schemas.errors import describe_validation_error

MAX_BODY_BYTES = 64 * 1024
# A live read waits this long for the case's worker (a query needs one): then 503 with Retry-After, never a hang.
QUERY_TIMEOUT_SECONDS = 5.0


def create_app(engine: ComplaintClient, pool: asyncpg.Pool, auth: Authenticator, *, max_body: int = MAX_BODY_BYTES) -> FastAPI:
    app = FastAPI(
        title="Complaint engine",
        version="0.1.0",
        description="Cases, actions and reads (docs/api.md). Every refusal is RFC 9457 problem+json.",
        responses=documented_problems(),
    )

    async def principal(request: Request) -> Principal:
        return auth.principal(request.headers.get("authorization"))

    async def viewer(request: Request) -> Viewer:
        return await viewer_for(pool, await principal(request))

    app.add_middleware(LimitsAndLog, max_body=max_body)

    @app.exception_handler(Problem)
    async def on_problem(request: Request, problem: Problem) -> JSONResponse:
        return problem_response(problem, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        """The framework's own refusals (a body that is not JSON, an unknown route, a wrong method), as problems."""
        detail = error.detail if isinstance(error.detail, str) else "the request was refused"
        return problem_response(Problem(error.status_code, detail, headers=dict(error.headers or {})), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        where = "; ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in error.errors())
        return problem_response(Problem(422, f"invalid request: {where}"), request.url.path)

    @app.exception_handler(RPCError)
    async def on_temporal(request: Request, error: RPCError) -> JSONResponse:
        if error.status == RPCStatusCode.NOT_FOUND:
            return problem_response(Problem(404, "no such case"), request.url.path)
        return problem_response(unavailable("Temporal"), request.url.path)

    @app.exception_handler(RuntimeError)
    async def on_runtime(request: Request, error: RuntimeError) -> JSONResponse:
        """A Temporal client that cannot connect (a lazy one, before the server is up) says so in a RuntimeError."""
        if "client connect" in str(error).lower():
            return problem_response(unavailable("Temporal"), request.url.path)
        raise error

    @app.exception_handler(asyncpg.PostgresError)
    @app.exception_handler(asyncpg.InterfaceError)
    async def on_database(request: Request, error: Exception) -> JSONResponse:
        return problem_response(unavailable("PostgreSQL"), request.url.path)

    @app.exception_handler(OSError)
    async def on_network(request: Request, error: OSError) -> JSONResponse:
        return problem_response(unavailable("Temporal or PostgreSQL"), request.url.path)

    # --- cases ---------------------------------------------------------------------------------

    @app.post("/cases", status_code=201, responses={200: {"description": "joined or existing"}})
    async def start_case(intake: dict[str, Any], request: Request) -> JSONResponse:
        who = await principal(request)
        try:
            parsed = ComplaintIntake.model_validate(intake)
        except ValidationError as error:
            raise Problem(422, describe_validation_error(error, "complaint intake")) from None
        if who.customer_id is not None and parsed.customer.customer_id != who.customer_id:
            raise Problem(403, f"{who.actor} may report only their own complaints")
        try:
            started = await engine.start(parsed)
        except CommandRejected as refused:
            raise for_rejection(refused.kind, refused.message) from None
        return JSONResponse(asdict(started), status_code=201 if started.created else 200)

    # The state is already a validated model: it is written out as it is, not checked again as a response model.
    @app.post("/cases/{complaint_id}/actions/{action}", response_model=CaseState, response_class=Response)
    async def act(
        complaint_id: str,
        action: str,
        body: dict[str, Any],
        request: Request,
        idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    ) -> Response:
        who = await principal(request)
        if action not in ACTIONS:
            raise Problem(404, f"unknown action {action!r}; actions are: {', '.join(ACTIONS)}")
        if body.get("actor") not in (None, who.actor):
            raise Problem(403, f"the token is {who.actor}'s; the body names {body.get('actor')!r}")
        if idempotency_key is not None:
            if body.get("request_id") not in (None, idempotency_key):
                raise Problem(422, "Idempotency-Key and the body's request_id differ")
            body = {**body, "request_id": idempotency_key}
        try:
            state = await engine.act(complaint_id, action, {**body, "actor": who.actor})
        except CommandRejected as refused:
            raise for_rejection(refused.kind, refused.message) from None
        return Response(state.model_dump_json(), media_type="application/json")

    @app.get("/cases")
    async def cases(
        request: Request,
        owner: str | None = None,
        status: str | None = None,
        category: str | None = None,
        severity: str | None = None,
        escalation_level: int | None = None,
        customer: str | None = None,
        deadline_before: str | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> CasePage:
        try:
            filters = CaseFilters(
                owner=owner, status=status, category=category, severity=severity,
                escalation_level=escalation_level, customer=customer, deadline_before=deadline_before,
            )  # fmt: skip
        except ValidationError as error:
            raise Problem(422, describe_validation_error(error, "filters")) from None
        return await list_cases(pool, await viewer(request), filters, limit=limit, after=after)

    @app.get("/cases/{complaint_id}")
    async def case(complaint_id: str, request: Request) -> dict[str, Any]:
        who, state = await _visible(complaint_id, request)
        return customer_state(state) if who.principal.customer_id else state.model_dump(mode="json")

    @app.get("/cases/{complaint_id}/timeline")
    async def timeline(complaint_id: str, request: Request) -> list[dict[str, Any]]:
        who, _ = await _visible(complaint_id, request)
        try:
            events: list[TimelineEvent] = await asyncio.wait_for(engine.timeline(complaint_id), QUERY_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            raise unavailable("the case's worker") from None
        if who.principal.customer_id:
            return customer_timeline(events)
        return [event.model_dump(mode="json") for event in events]

    async def _visible(complaint_id: str, request: Request) -> tuple[Viewer, CaseState]:
        """The reader and the case's live state, or 404: a case one may not see is one that does not exist."""
        who = await viewer(request)
        state = await _state(complaint_id)
        if not who.may_see(state.customer.customer_id, state.owner, state.pending_owner):
            raise Problem(404, "no such case")
        return who, state

    async def _state(complaint_id: str) -> CaseState:
        try:
            return await asyncio.wait_for(engine.state(complaint_id), QUERY_TIMEOUT_SECONDS)
        except WorkflowQueryFailedError:
            raise Problem(404, "no such case") from None
        except asyncio.TimeoutError:
            raise unavailable("the case's worker") from None

    # --- notifications -------------------------------------------------------------------------

    @app.get("/notifications")
    async def notifications(
        request: Request, all: bool = False, case: str | None = None, limit: int = 50, after: int | None = None
    ) -> NotificationPage:
        who = await viewer(request)
        if not who.staff:
            raise Problem(403, "notifications are for the roster's staff")
        return await list_notifications_page(pool, who, pending_only=not all, complaint_id=case, limit=limit, after=after)

    @app.post("/notifications/{notification_id}/ack")
    async def ack(notification_id: int, request: Request) -> dict[str, Any]:
        who = await viewer(request)
        [found] = await get_notifications(pool, [notification_id]) or [None]
        if found is None or not who.staff or (who.owners is not None and found.recipient not in who.owners):
            raise Problem(404, "no such notification")
        await acknowledge(pool, [notification_id], acknowledged_by=who.principal.actor)
        [acknowledged] = await get_notifications(pool, [notification_id], with_attempts=True)
        return acknowledged.model_dump(mode="json")

    # --- health --------------------------------------------------------------------------------

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        try:
            await pool.fetchval("SELECT 1")
        except Exception:
            raise unavailable("PostgreSQL") from None
        try:
            await engine.client.workflow_service.get_system_info(_system_info_request())
        except Exception:
            raise unavailable("Temporal") from None
        return {"status": "ready"}

    return app


def _system_info_request() -> Any:
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

    return GetSystemInfoRequest()
