"""The HTTP API through real HTTP: tokens from an OIDC issuer whose JWKS the test serves, a signed-mode worker
behind it (the API signs each action's assertion), and PostgreSQL for the lists.

Each refusal as RFC 9457 problem+json with its status; the actor from the token, never the body; reads
authorized for a customer, an agent, a supervisor and a registered system.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, AsyncIterator

import pytest

from activities.roster_store import load_roster
from schemas import Roster
from tests.support.api import API_ROSTER as ROSTER
from tests.support.api import ISSUER, OWNER, OidcIssuer, api_on, intake, iter_pages, opened, problem

@pytest.fixture
async def api(dev_env, pool) -> AsyncIterator[Any]:
    await load_roster(pool, ROSTER)
    async with api_on(dev_env, pool, ISSUER) as (http, engine):
        yield http, engine


async def test_without_a_valid_token_every_route_is_401_with_a_challenge(api):
    http, _ = api
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": f"Bearer {ISSUER.token(preferred_username=OWNER, expires_in=-60)}"},
                    {"Authorization": f"Bearer {ISSUER.token(preferred_username=OWNER, audience='another-api')}"},
                    {"Authorization": f"Bearer {OidcIssuer().token(preferred_username=OWNER)}"}):  # fmt: skip
        response = await http.get("/cases", headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer"), response.text
        assert problem(response)["status"] == 401
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert (await http.get("/readyz")).json() == {"status": "ready"}


async def test_a_case_is_started_acted_on_and_read_with_the_actor_from_the_token(api):
    http, _ = api
    body = await opened(http)
    case = body["complaint_id"]
    again = await http.post("/cases", json=body, headers=ISSUER.staff(OWNER))
    assert again.status_code == 200 and again.json()["outcome"] == "existing"

    accepted = await http.post(f"/cases/{case}/actions/accept_ownership", json={}, headers=ISSUER.staff(OWNER))
    assert accepted.status_code == 200 and accepted.json()["status"] == "in_progress", accepted.text
    forged = await http.post(f"/cases/{case}/actions/add_note", json={"actor": "api-max", "text": "x"}, headers=ISSUER.staff(OWNER))
    assert forged.status_code == 403 and "api-max" in problem(forged)["detail"]
    contact = {"channel": "phone", "summary": "Called the customer back"}
    not_owner = await http.post(f"/cases/{case}/actions/contact_customer", json=contact, headers=ISSUER.staff("api-bob"))
    assert not_owner.status_code == 403 and problem(not_owner)["kind"] == "NotAllowed"
    invalid = await http.post(f"/cases/{case}/actions/make_promise", json={"description": ""}, headers=ISSUER.staff(OWNER))
    assert invalid.status_code == 422 and problem(invalid)["detail"]
    unknown = await http.post(f"/cases/{case}/actions/fly", json={}, headers=ISSUER.staff(OWNER))
    assert unknown.status_code == 404
    missing = await http.post("/cases/API-none/actions/add_note", json={"text": "hello"}, headers=ISSUER.staff(OWNER))
    assert missing.status_code == 404, missing.text

    key = {"Idempotency-Key": f"note-{uuid.uuid4().hex[:6]}", **ISSUER.staff(OWNER)}
    first = await http.post(f"/cases/{case}/actions/add_note", json={"text": "Called the bank"}, headers=key)
    resend = await http.post(f"/cases/{case}/actions/add_note", json={"text": "Called the bank"}, headers=key)
    assert first.status_code == resend.status_code == 200 and first.json()["event_count"] == resend.json()["event_count"]
    reused = await http.post(f"/cases/{case}/actions/add_note", json={"text": "Something else"}, headers=key)
    assert reused.status_code == 409, reused.text

    state = await http.get(f"/cases/{case}", headers=ISSUER.staff(OWNER))
    assert state.status_code == 200 and state.json()["owner"] == OWNER
    timeline = (await http.get(f"/cases/{case}/timeline", headers=ISSUER.staff(OWNER))).json()
    [note] = [e for e in timeline if e["kind"] == "note_added"]
    assert note["actor"] == OWNER and note["data"]["verified_by"] == {"iss": "complaints-api", "kid": "api-1"}


async def test_a_customer_sees_only_their_own_case_and_not_the_floors_notes(api):
    http, _ = api
    body = await opened(http)
    case, customer = body["complaint_id"], body["customer"]["customer_id"]
    await http.post(f"/cases/{case}/actions/accept_ownership", json={}, headers=ISSUER.staff(OWNER))
    await http.post(f"/cases/{case}/actions/add_note", json={"text": "Customer sounded upset"}, headers=ISSUER.staff(OWNER))
    mine = await http.get(f"/cases/{case}", headers=ISSUER.customer(customer))
    assert mine.status_code == 200 and "supervisor" not in mine.json() and "handoff" not in mine.json()
    kinds = [e["kind"] for e in (await http.get(f"/cases/{case}/timeline", headers=ISSUER.customer(customer))).json()]
    assert "note_added" not in kinds and "complaint_received" in kinds
    assert all("data" not in e for e in (await http.get(f"/cases/{case}/timeline", headers=ISSUER.customer(customer))).json())
    other = await http.get(f"/cases/{case}", headers=ISSUER.customer("cu-someone-else"))
    assert other.status_code == 404
    listed = (await http.get("/cases", headers=ISSUER.customer(customer))).json()
    assert [item["complaint_id"] for item in listed["items"]] == [case] and listed["total"] == 1
    foreign = intake(customer={"customer_id": "cu-someone-else", "name": "Mallory"})
    assert (await http.post("/cases", json=foreign, headers=ISSUER.customer(customer))).status_code == 403
    notes = await http.get("/notifications", headers=ISSUER.customer(customer))
    assert notes.status_code == 403


async def test_lists_come_from_postgresql_filtered_paged_and_by_who_may_see(api):
    http, _ = api
    cases = [(await opened(http, severity=severity))["complaint_id"] for severity in ("low", "medium", "high")]
    await asyncio.sleep(0)  # the writes are read-your-writes: each start's events are in PostgreSQL
    pages, after = [], None
    while True:
        params: dict[str, Any] = {"owner": OWNER, "limit": 2, **({"after": after} if after else {})}
        page = (await http.get("/cases", params=params, headers=ISSUER.staff("api-bob"))).json()
        pages.append(page)
        after = page["next"]
        if after is None:
            break
    seen = list(iter_pages(pages))
    assert set(cases) <= set(seen) and len(seen) == len(set(seen)) == pages[0]["total"]
    high = (await http.get("/cases", params={"owner": OWNER, "severity": "high"}, headers=ISSUER.staff("api-sam"))).json()
    assert cases[2] in [item["complaint_id"] for item in high["items"]] and all(i["severity"] == "high" for i in high["items"])
    manager = (await http.get("/cases", params={"owner": OWNER}, headers=ISSUER.staff("api-max"))).json()
    assert set(cases) <= {item["complaint_id"] for item in manager["items"]} or manager["total"] > len(manager["items"])
    elsewhere = (await http.get("/cases", params={"owner": OWNER}, headers=ISSUER.staff("api-oli"))).json()
    assert elsewhere["total"] == 0 and elsewhere["items"] == []
    assert (await http.get(f"/cases/{cases[0]}", headers=ISSUER.staff("api-oli"))).status_code == 404
    crm = (await http.get("/cases", params={"owner": OWNER}, headers=ISSUER.system("api-crm"))).json()
    assert set(cases) <= {item["complaint_id"] for item in crm["items"]} or crm["total"] > len(crm["items"])
    assert (await http.get("/cases", headers=ISSUER.system("api-chat"))).status_code == 403
    assert (await http.get("/cases", params={"after": "garbage!"}, headers=ISSUER.staff(OWNER))).status_code == 400
    assert (await http.get("/cases", params={"limit": 0}, headers=ISSUER.staff(OWNER))).status_code == 400


async def test_notifications_are_listed_and_acknowledged_by_the_floor(api, pool):
    http, _ = api
    case = (await opened(http))["complaint_id"]
    notification_id = await pool.fetchval(
        "INSERT INTO notifications (complaint_id, clock, level, recipient, recipient_role, reason, due_at, event_seq) "
        "VALUES ($1, 'first_response', 1, $2, 'owner', 'first response due', now(), 1) RETURNING id",
        case,
        OWNER,
    )
    second = await pool.fetchval(
        "INSERT INTO notifications (complaint_id, clock, level, recipient, recipient_role, reason, due_at, event_seq) "
        "VALUES ($1, 'first_response', 2, $2, 'supervisor', 'first response overdue', now(), 2) RETURNING id",
        case,
        "api-sam",
    )
    first_page = (await http.get("/notifications", params={"case": case, "limit": 1}, headers=ISSUER.staff("api-sam"))).json()
    assert [n["id"] for n in first_page["items"]] == [notification_id] and first_page["next"] == notification_id
    params = {"case": case, "limit": 1, "after": first_page["next"]}
    second_page = (await http.get("/notifications", params=params, headers=ISSUER.staff("api-sam"))).json()
    assert [n["id"] for n in second_page["items"]] == [second] and second_page["next"] is None
    owners_view = (await http.get("/notifications", params={"case": case}, headers=ISSUER.staff(OWNER))).json()
    assert [n["id"] for n in owners_view["items"]] == [notification_id, second]  # the supervisor is in the team
    assert (await http.get("/notifications", params={"case": case}, headers=ISSUER.staff("api-oli"))).json()["items"] == []
    assert (await http.post(f"/notifications/{notification_id}/ack", headers=ISSUER.staff("api-oli"))).status_code == 404
    acked = await http.post(f"/notifications/{notification_id}/ack", headers=ISSUER.staff("api-sam"))
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "api-sam", acked.text


async def test_a_body_over_the_limit_is_413_and_nothing_answers_500_with_a_traceback(api):
    http, _ = api
    huge = {"text": "x" * (70 * 1024)}
    response = await http.post("/cases/API-x/actions/add_note", json=huge, headers=ISSUER.staff(OWNER))
    assert response.status_code == 413 and problem(response)["status"] == 413
    openapi = (await http.get("/openapi.json")).json()
    assert {"/cases", "/cases/{complaint_id}/actions/{action}", "/notifications"} <= set(openapi["paths"])


async def test_the_demos_case_over_http_closes_with_each_actor_from_its_token(api, pool):
    """`make demo`'s last case (demo_cases/over_http.py), against this API: the agent works it, the customer confirms."""
    import json
    from pathlib import Path

    from demo_cases.customers import customer_id
    from demo_cases.over_http import worked_over_http

    http, _ = api
    await load_roster(pool, Roster.model_validate(json.loads(Path("roster/demo.json").read_text())))
    complaint_id = f"API-{uuid.uuid4().hex[:10]}"
    customer = customer_id("CU-7781", complaint_id)
    tokens = {"c.nguyen": ISSUER.token(preferred_username="c.nguyen"), f"customer:{customer}": ISSUER.token(customer_id=customer)}
    state = await worked_over_http(str(http.base_url).rstrip("/"), tokens, complaint_id)
    assert state["status"] == "closed" and state["outcome"] == "resolved"


async def test_temporal_or_postgresql_away_is_503_with_retry_after(database_url, pool):
    """PostgreSQL closed, or Temporal unreachable: 503 with Retry-After, never a 500 (pool: the schema is there)."""
    import httpx
    from temporalio.client import Client

    from activities import create_pool
    from api.app import create_app
    from api.auth import bearer_token, key_authenticator
    from complaint_client import ComplaintClient
    from identity.keys import new_signing_key
    from stack.ports import free_port

    key = new_signing_key("local", "l1")
    auth = key_authenticator(key, audience="api")
    headers = {"Authorization": f"Bearer {bearer_token(key, OWNER, audience='api')}"}
    nowhere = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)
    closed = await create_pool(database_url, min_size=0, max_size=1)
    await closed.close()
    live = await create_pool(database_url, min_size=0, max_size=1)
    try:
        for app_pool, path, what in ((closed, "/cases", "PostgreSQL"), (live, "/cases/API-any", "Temporal"), (live, "/readyz", "Temporal")):
            app = create_app(ComplaintClient(nowhere, "nowhere"), app_pool, auth)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
                response = await http.get(path, headers=headers)
            assert response.status_code == 503 and response.headers["retry-after"], (path, response.text)
            assert what in problem(response)["detail"], (path, response.text)
    finally:
        await live.close()


async def test_an_agent_of_another_team_sees_a_case_offered_to_them(api):
    http, _ = api
    case = (await opened(http))["complaint_id"]
    assert (await http.post(f"/cases/{case}/actions/accept_ownership", json={}, headers=ISSUER.staff(OWNER))).status_code == 200
    assert (await http.get(f"/cases/{case}", headers=ISSUER.staff("api-oli"))).status_code == 404
    transfer = {"to_agent": "api-oli", "handoff_note": "Refund of 49.00 is with the bank under reference RB-2231; customer prefers email."}
    offered = await http.post(f"/cases/{case}/actions/transfer_ownership", json=transfer, headers=ISSUER.staff(OWNER))
    assert offered.status_code == 200 and offered.json()["pending_owner"] == "api-oli", offered.text
    assert (await http.get(f"/cases/{case}", headers=ISSUER.staff("api-oli"))).status_code == 200
    listed = (await http.get("/cases", headers=ISSUER.staff("api-oli"))).json()
    assert case in {item["complaint_id"] for item in listed["items"]}
