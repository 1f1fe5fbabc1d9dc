"""The PostgreSQL activities against a real server (embedded and local, see tests/support/pg_fixtures.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.exceptions import ApplicationError

from activities import CaseActivities, apply_migrations, create_pool
from activities.roster_store import RosterError, list_agents, load_roster
from schemas.activity_io import AssignOwnerInput, RecordCaseEvents
from schemas.roster import Agent, Roster
from schemas.state import CaseState, Promise, TimelineEvent
from tests.support.activity_io import T0, member, run, state
from tests.support.paths import REPO

DEMO_ROSTER = REPO / "roster" / "demo.json"


def team(*extra: Agent) -> Roster:
    """m1 manages s1, who supervises a1 and a2 (billing, 2 open cases at most)."""
    return Roster(
        agents=[
            member("m1", role="manager", team="care", authority_limit=Decimal(5000)),
            member("s1", role="supervisor", supervisor_id="m1", max_open=5, authority_limit=Decimal(500)),
            member("a1", supervisor_id="s1", max_open=2, authority_limit=Decimal(50)),
            member("a2", supervisor_id="s1", max_open=2),
            *extra,
        ]
    )


def intake(complaint_id: str, category: str = "billing", received_by: str | None = None) -> AssignOwnerInput:
    return AssignOwnerInput(
        complaint_id=complaint_id,
        workflow_id=f"complaint-{complaint_id}",
        customer_id="cust-1",
        category=category,
        severity="medium",
        policy="standard",
        summary="Charged twice",
        received_at=T0,
        received_by=received_by,
    )


async def assign(acts: CaseActivities, complaint_id: str, **kw) -> str:
    return (await run(acts.assign_owner, intake(complaint_id, **kw))).owner.agent_id


def event(seq: int, kind: str = "note_added", **data) -> TimelineEvent:
    return TimelineEvent(seq=seq, at=T0 + timedelta(minutes=seq), kind=kind, actor="a1", data=data or {"n": seq})


def promise(status: str = "open", renegotiations: int = 0) -> Promise:
    return Promise(
        promise_id="P1",
        description="Refund the duplicate charge",
        owed_by="a1",
        due_at=T0 + timedelta(days=2),
        status=status,
        renegotiations=renegotiations,
        made_at=T0,
    )


def batch(events: list[TimelineEvent], st: CaseState) -> RecordCaseEvents:
    return RecordCaseEvents(workflow_id=f"complaint-{st.complaint_id}", run_id="run-1", events=events, state=st)


# -- migrations ----------------------------------------------------------------


async def test_migrations_are_idempotent_and_safe_when_two_workers_start_at_once(pg_server):
    url = await pg_server.create_database()
    pools = [await create_pool(url, max_size=2) for _ in range(2)]
    try:
        first = await asyncio.gather(*(apply_migrations(p) for p in pools))
        assert sorted(first) == [[], ["0001", "0002"]]
        assert await apply_migrations(pools[0]) == []
        rows = await pools[0].fetch("SELECT version, name FROM schema_migrations")
        assert sorted((r["version"], r["name"]) for r in rows) == [("0001", "initial"), ("0002", "first_try_retry_at")]
        tables = {
            r["tablename"] for r in await pools[0].fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert {"agents", "cases", "case_events", "promises", "notifications", "schema_migrations"} <= tables
    finally:
        for p in pools:
            await p.close()
        await pg_server.drop_database(url)


async def test_a_database_at_an_earlier_migration_gets_the_later_ones(pg_server, tmp_path):
    """A database made before the first try (0001 only) gains delivery_attempts.retry_at at the next start."""
    from activities.db import MIGRATIONS_DIR

    (tmp_path / "0001_initial.sql").write_text((MIGRATIONS_DIR / "0001_initial.sql").read_text())
    url = await pg_server.create_database()
    pool = await create_pool(url, max_size=2)
    try:
        assert await apply_migrations(pool, tmp_path) == ["0001"]
        assert await apply_migrations(pool) == ["0002"]
        assert await pool.fetchval(
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'delivery_attempts' AND column_name = 'retry_at'"
        ) == "timestamp with time zone"
    finally:
        await pool.close()
        await pg_server.drop_database(url)


async def test_session_pool_is_migrated_and_json_goes_in_and_out_as_dicts(pool):
    assert await apply_migrations(pool) == []
    assert await pool.fetchval("SELECT $1::jsonb", {"a": [1, "x"]}) == {"a": [1, "x"]}


# -- roster --------------------------------------------------------------------


async def test_roster_load_upserts_and_lists(fresh_pool):
    assert await load_roster(fresh_pool, team()) == 4
    renamed = team()
    renamed.agents[2].name = "Arjun Patel"
    renamed.agents[3].active = False
    assert await load_roster(fresh_pool, renamed) == 4
    agents = {a.id: a for a in await list_agents(fresh_pool)}
    assert list(agents) == ["a1", "a2", "m1", "s1"]
    assert agents["a1"].name == "Arjun Patel" and agents["a1"].authority_limit == Decimal(50)
    assert agents["a2"].active is False
    assert agents["a1"].skills == ["billing"] and agents["a1"].supervisor_id == "s1"


async def test_roster_with_unknown_supervisor_is_refused_clearly_and_nothing_is_written(fresh_pool):
    bad = Roster(agents=[member("a1", supervisor_id="s-missing"), member("a2")])
    with pytest.raises(RosterError, match=r"'a1' has supervisor_id 's-missing'.*neither in this roster nor already loaded"):
        await load_roster(fresh_pool, bad)
    assert await list_agents(fresh_pool) == []
    # A supervisor loaded earlier may be referenced by a later file.
    await load_roster(fresh_pool, Roster(agents=[member("s1", role="supervisor")]))
    assert await load_roster(fresh_pool, Roster(agents=[member("a3", supervisor_id="s1")])) == 1


async def test_demo_roster_loads_and_routes_by_team_skill(fresh_pool):
    roster = Roster.model_validate(json.loads(DEMO_ROSTER.read_text()))
    await load_roster(fresh_pool, roster)
    acts = CaseActivities(fresh_pool)
    billing = await run(acts.assign_owner, intake("D-1", category="refunds"))
    delivery = await run(acts.assign_owner, intake("D-2", category="delivery"))
    assert (billing.owner.team, billing.supervisor.role, billing.manager.role) == ("billing", "supervisor", "manager")
    assert (delivery.owner.team, delivery.routed_by) == ("delivery", "routing")
    assert billing.manager.agent_id == delivery.manager.agent_id


# -- assign_owner --------------------------------------------------------------


async def test_assign_owner_is_idempotent(fresh_pool):
    await load_roster(fresh_pool, team())
    acts = CaseActivities(fresh_pool)
    first = await run(acts.assign_owner, intake("C-1"))
    again = await asyncio.gather(*(run(acts.assign_owner, intake("C-1")) for _ in range(3)))
    assert all(a == first for a in again)
    assert (first.owner.agent_id, first.routed_by) == ("a1", "routing")
    assert await fresh_pool.fetchval("SELECT count(*) FROM cases") == 1
    row = await fresh_pool.fetchrow("SELECT status, owner, workflow_id FROM cases WHERE complaint_id = 'C-1'")
    assert dict(row) == {"status": "assigned", "owner": "a1", "workflow_id": "complaint-C-1"}
    # The retry did not count as an open case of a1: the next case goes to a2.
    assert await assign(acts, "C-2") == "a2"


async def test_assign_owner_returns_the_escalation_chain(fresh_pool):
    await load_roster(fresh_pool, team(member("s2", role="supervisor", team="delivery"), member("m2", role="manager", team="delivery")))
    await load_roster(fresh_pool, Roster(agents=[member("d1", team="delivery", skills=["delivery"], supervisor_id="s2")]))
    acts = CaseActivities(fresh_pool)
    a = await run(acts.assign_owner, intake("C-1"))
    assert (a.owner.agent_id, a.supervisor.agent_id, a.manager.agent_id) == ("a1", "s1", "m1")
    assert a.owner.role == "agent" and a.supervisor.role == "supervisor" and a.owner.supervisor_id == "s1"
    # s2 has no supervisor: the manager of the owner's team.
    d = await run(acts.assign_owner, intake("C-2", category="delivery"))
    assert (d.owner.agent_id, d.supervisor.agent_id, d.manager.agent_id) == ("d1", "s2", "m2")


async def test_assign_owner_respects_received_by_skills_capacity_and_ordering(fresh_pool):
    await load_roster(fresh_pool, team(member("b1", skills=["delivery"], supervisor_id="s1")))
    acts = CaseActivities(fresh_pool)
    # received_by wins, whatever the skill
    r = await run(acts.assign_owner, intake("C-1", received_by="b1"))
    assert (r.owner.agent_id, r.routed_by) == ("b1", "received_by")
    # skill, fewest open cases, then id: a1, a2, a1, a2 (both now full: max 2)
    assert [await assign(acts, f"C-{i}") for i in range(2, 6)] == ["a1", "a2", "a1", "a2"]
    # billing agents are full: any agent under capacity (b1 has 1 of 10)
    f = await run(acts.assign_owner, intake("C-6"))
    assert (f.owner.agent_id, f.routed_by) == ("b1", "fallback")
    # a closed case frees capacity
    await fresh_pool.execute("UPDATE cases SET status = 'closed' WHERE complaint_id = 'C-2'")
    assert await assign(acts, "C-7") == "a1"
    # an unknown receiver is routed as usual
    u = await run(acts.assign_owner, intake("C-8", received_by="nobody"))
    assert u.owner.agent_id == "b1" and "not on the roster" in u.reason


async def test_assign_owner_falls_back_to_supervisor_then_never_leaves_a_case_ownerless(fresh_pool):
    await load_roster(fresh_pool, team())
    await load_roster(fresh_pool, Roster(agents=[member("a1", supervisor_id="s1", max_open=0), member("a2", supervisor_id="s1", max_open=0)]))
    acts = CaseActivities(fresh_pool)
    s = await run(acts.assign_owner, intake("C-1"))
    assert (s.owner.agent_id, s.routed_by, s.supervisor.agent_id) == ("s1", "fallback", "m1")
    for i in range(2, 8):  # s1 is over capacity (5) from the sixth case: still s1, before the manager
        assert await assign(acts, f"C-{i}") == "s1"


async def test_concurrent_assignments_are_serialized(fresh_pool):
    await load_roster(fresh_pool, team())
    acts = CaseActivities(fresh_pool)
    owners = await asyncio.gather(*(assign(acts, f"C-{i}") for i in range(4)))
    assert sorted(owners) == ["a1", "a1", "a2", "a2"]


async def test_assign_owner_without_an_active_roster_asks_for_one_and_is_retryable(fresh_pool):
    acts = CaseActivities(fresh_pool)
    with pytest.raises(ApplicationError, match="roster/demo.json") as err:
        await run(acts.assign_owner, intake("C-1"))
    assert err.value.type == "NoActiveAgent" and not err.value.non_retryable
    assert await fresh_pool.fetchval("SELECT count(*) FROM cases") == 0
    await load_roster(fresh_pool, team())
    assert await assign(acts, "C-1") == "a1"


async def test_lookup_agent(fresh_pool):
    await load_roster(fresh_pool, team())
    acts = CaseActivities(fresh_pool)
    ref = await run(acts.lookup_agent, "s1")
    assert (ref.agent_id, ref.role, ref.supervisor_id, ref.active) == ("s1", "supervisor", "m1", True)
    assert await run(acts.lookup_agent, "nobody") is None


# -- record_case_events ----------------------------------------------------------


async def test_record_case_events_retried_writes_each_row_once(fresh_pool):
    acts = CaseActivities(fresh_pool)
    first = batch([event(1, "complaint_received"), event(2, "owner_assigned")], state(2, status="assigned"))
    for _ in range(3):
        await run(acts.record_case_events, first)
    second = batch([event(3, "promise_made", promise_id="P1")], state(3, promises=[promise()]))
    await asyncio.gather(*(run(acts.record_case_events, second) for _ in range(2)))
    rows = await fresh_pool.fetch("SELECT seq, kind, actor, data, at FROM case_events WHERE complaint_id = 'C-1' ORDER BY seq")
    assert [(r["seq"], r["kind"]) for r in rows] == [(1, "complaint_received"), (2, "owner_assigned"), (3, "promise_made")]
    assert rows[2]["data"] == {"promise_id": "P1"} and rows[0]["at"] == T0 + timedelta(minutes=1)
    case = await fresh_pool.fetchrow("SELECT * FROM cases WHERE complaint_id = 'C-1'")
    assert (case["last_seq"], case["status"], case["owner"], case["customer_id"], case["run_id"]) == (3, "in_progress", "a1", "cust-1", "run-1")
    assert case["snapshot"]["event_count"] == 3 and case["snapshot"]["customer"]["name"] == "Dana Whitfield"
    assert await fresh_pool.fetchval("SELECT count(*) FROM promises") == 1


async def test_a_stale_snapshot_never_overwrites_a_newer_one(fresh_pool):
    acts = CaseActivities(fresh_pool)
    old = batch([event(1), event(2)], state(2, status="in_progress", promises=[promise("open")]))
    new = batch([event(3), event(4)], state(4, status="follow_through", promises=[promise("kept")]))
    await run(acts.record_case_events, old)
    await run(acts.record_case_events, new)
    await run(acts.record_case_events, old)  # a late retry of the first batch
    case = await fresh_pool.fetchrow("SELECT status, last_seq, snapshot FROM cases WHERE complaint_id = 'C-1'")
    assert (case["status"], case["last_seq"], case["snapshot"]["status"]) == ("follow_through", 4, "follow_through")
    assert await fresh_pool.fetchval("SELECT status FROM promises WHERE promise_id = 'P1'") == "kept"
    assert await fresh_pool.fetchval("SELECT count(*) FROM case_events") == 4


async def test_record_case_events_keeps_the_assigned_owner_and_assignment(fresh_pool):
    await load_roster(fresh_pool, team())
    acts = CaseActivities(fresh_pool)
    assigned = await run(acts.assign_owner, intake("C-1"))
    unowned = state(1, status="assigned").model_copy(update={"owner": None})
    await run(acts.record_case_events, batch([event(1, "complaint_received")], unowned))
    assert await fresh_pool.fetchval("SELECT owner FROM cases WHERE complaint_id = 'C-1'") == "a1"
    assert await run(acts.assign_owner, intake("C-1")) == assigned


async def test_different_content_for_a_recorded_seq_is_a_non_retryable_error(fresh_pool):
    acts = CaseActivities(fresh_pool)
    await run(acts.record_case_events, batch([event(1), event(2)], state(2)))
    conflicting = batch([event(2, "customer_contacted"), event(3)], state(3, status="closed"))
    with pytest.raises(ApplicationError, match="seq 2") as err:
        await run(acts.record_case_events, conflicting)
    assert err.value.non_retryable and err.value.type == "TimelineConflict"
    # Nothing of the rejected batch was written.
    assert await fresh_pool.fetchval("SELECT count(*) FROM case_events") == 2
    assert await fresh_pool.fetchval("SELECT status FROM cases") == "in_progress"
    # Same seq, same kind, other data: also a conflict.
    with pytest.raises(ApplicationError, match="seq 1"):
        await run(acts.record_case_events, batch([event(1, n=99)], state(2)))
