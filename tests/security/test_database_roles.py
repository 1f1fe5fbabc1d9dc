"""Issue 14.6: the worker's own database role appends to the timeline and can change nothing in it; the
roster keeps its history."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from activities.case_activities import CaseActivities
from activities.db import create_pool, prepare_database
from activities.roster_store import load_roster, roster_history
from schemas.activity_io import RecordCaseEvents
from schemas.roster import Roster
from tests.support.case import accepted_case


def as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.netloc.rsplit('@', 1)[-1]}"))


async def test_the_worker_role_appends_to_the_timeline_and_cannot_change_it(pg_server):
    url = await pg_server.create_database()
    role = f"complaints_worker_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(pg_server.admin_url)
    await admin.execute(f'CREATE ROLE "{role}" LOGIN')
    runtime = None
    try:
        runtime = await create_pool(as_user(url, role), min_size=1, max_size=2)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await prepare_database(runtime)  # alone, the worker's role may not create the schema
        assert await prepare_database(runtime, owner_url=url) == ["0001", "0002"]
        case = accepted_case()
        batch = RecordCaseEvents(workflow_id="complaint-C-1", run_id="run-1", events=case.timeline, state=case.state)
        await ActivityEnvironment().run(CaseActivities(runtime).record_case_events, batch)
        stored = await runtime.fetchval("SELECT count(*) FROM case_events")
        assert stored == len(case.timeline)
        for statement in (
            "UPDATE case_events SET kind = 'note_added'",
            "DELETE FROM case_events",
            "TRUNCATE case_events",
            "DELETE FROM agent_changes",
            "DROP TABLE cases",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await runtime.execute(statement)
        assert await runtime.fetchval("SELECT count(*) FROM case_events") == stored
        assert await prepare_database(runtime, owner_url=url) == []  # a restart: nothing to apply, grants again
    finally:
        if runtime is not None:
            await runtime.close()
        await pg_server.drop_database(url)
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()


ROSTER = {
    "agents": [
        {"id": "rh-sam", "name": "Sam Lead", "role": "supervisor", "team": "billing"},
        {"id": "rh-ana", "name": "Ana Agent", "role": "agent", "team": "billing", "supervisor_id": "rh-sam",
         "authority_limit": "100.00"},
    ]
}  # fmt: skip


async def test_a_roster_change_keeps_who_made_it_and_the_old_and_new_values(fresh_pool):
    await load_roster(fresh_pool, Roster.model_validate(ROSTER), changed_by="ops.alice")
    added = await roster_history(fresh_pool, "rh-ana")
    assert {row["field"] for row in added} >= {"role", "authority_limit", "supervisor_id", "active"}
    assert all(row["old_value"] is None and row["changed_by"] == "ops.alice" for row in added)

    changed = {"agents": [{**ROSTER["agents"][1], "role": "supervisor", "authority_limit": "2500.00"}]}
    await load_roster(fresh_pool, Roster.model_validate(changed), changed_by="ops.bob")
    latest = [row for row in await roster_history(fresh_pool, "rh-ana") if row["changed_by"] == "ops.bob"]
    assert sorted((row["field"], row["old_value"], row["new_value"]) for row in latest) == [
        ("authority_limit", "100.00", "2500.00"),
        ("role", "agent", "supervisor"),
    ]
    await load_roster(fresh_pool, Roster.model_validate(changed), changed_by="ops.carol")  # the same again
    assert not [row for row in await roster_history(fresh_pool) if row["changed_by"] == "ops.carol"]
