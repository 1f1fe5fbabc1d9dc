"""The roster in the application database: load (upsert) and list agents.

Loading is additive: agents in the file are inserted or updated, agents not
in it are left as they are (to retire someone, load them with "active": false).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog

from schemas.roster import Agent, AgentRef, Roster, SystemRef

ROSTER_LOCK_KEY = 0x636F6D706C_02

log = structlog.get_logger()


class RosterError(ValueError):
    """A roster that cannot be loaded as it is; the message says what to fix."""


AGENT_COLUMNS = (
    "id, name, role, team, supervisor_id, skills, authority_limit, max_open_cases, active, "
    "email, webhook_url, chat_webhook_url"
)


def agent_from_row(row: asyncpg.Record | dict[str, Any]) -> Agent:
    return Agent(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        team=row["team"],
        supervisor_id=row["supervisor_id"],
        skills=list(row["skills"] or []),
        authority_limit=row["authority_limit"],
        max_open_cases=row["max_open_cases"],
        active=row["active"],
        email=row["email"],
        webhook_url=row["webhook_url"],
        chat_webhook_url=row["chat_webhook_url"],
    )


def agent_ref(agent: Agent) -> AgentRef:
    return AgentRef(
        agent_id=agent.id,
        name=agent.name,
        role=agent.role,
        team=agent.team,
        supervisor_id=agent.supervisor_id,
        active=agent.active,
        authority_limit=agent.authority_limit,
        max_open_cases=agent.max_open_cases,
    )


async def load_roster(pool: asyncpg.Pool, roster: Roster, *, changed_by: str = "system:roster-load") -> int:
    """Insert or update every agent of `roster`; return how many were written.

    Every supervisor_id must name an agent of the file or one already loaded,
    otherwise RosterError and nothing is written. Each changed field of each agent
    (a role, an authority limit, ...) is kept in agent_changes with changed_by, the
    old and the new value, in the same transaction.
    """
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ROSTER_LOCK_KEY)
        before = {row["id"]: agent_from_row(row) for row in await conn.fetch(f"SELECT {AGENT_COLUMNS} FROM agents")}
        known = set(before)
        in_file = {agent.id for agent in roster.agents}
        problems = [
            f"agent {agent.id!r} has supervisor_id {agent.supervisor_id!r}, "
            "which is neither in this roster nor already loaded"
            for agent in roster.agents
            if agent.supervisor_id is not None and agent.supervisor_id not in in_file | known
        ]
        if problems:
            raise RosterError(
                "roster not loaded: " + "; ".join(problems)
                + ". Add the supervisor to the roster or correct supervisor_id."
            )
        await conn.executemany(
            f"""
            INSERT INTO agents ({AGENT_COLUMNS}, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now())
            ON CONFLICT (id) DO UPDATE SET
                name = EXCLUDED.name,
                role = EXCLUDED.role,
                team = EXCLUDED.team,
                supervisor_id = EXCLUDED.supervisor_id,
                skills = EXCLUDED.skills,
                authority_limit = EXCLUDED.authority_limit,
                max_open_cases = EXCLUDED.max_open_cases,
                active = EXCLUDED.active,
                email = EXCLUDED.email,
                webhook_url = EXCLUDED.webhook_url,
                chat_webhook_url = EXCLUDED.chat_webhook_url,
                updated_at = now()
            """,
            [
                (
                    a.id,
                    a.name,
                    a.role,
                    a.team,
                    a.supervisor_id,
                    list(a.skills),
                    a.authority_limit,
                    a.max_open_cases,
                    a.active,
                    a.email,
                    a.webhook_url,
                    a.chat_webhook_url,
                )
                for a in roster.agents
            ],
        )
        await conn.executemany(
            """
            INSERT INTO systems (name, actions, active, updated_at) VALUES ($1, $2, $3, now())
            ON CONFLICT (name) DO UPDATE SET actions = EXCLUDED.actions, active = EXCLUDED.active, updated_at = now()
            """,
            [(system.name, list(system.actions), system.active) for system in roster.systems],
        )
        changes = roster_changes(before, roster.agents)
        await conn.executemany(
            "INSERT INTO agent_changes (agent_id, field, old_value, new_value, changed_by) VALUES ($1, $2, $3, $4, $5)",
            [(agent_id, field, old, new, changed_by) for agent_id, field, old, new in changes],
        )
    log.info("roster loaded", agents=len(roster.agents), changes=len(changes), actor=changed_by)
    return len(roster.agents)


def roster_changes(before: dict[str, Agent], agents: list[Agent]) -> list[tuple[str, str, Any, Any]]:
    """(agent id, field, old value (None for a new agent), new value) for each field that changes."""
    changes = []
    for agent in agents:
        new = agent.model_dump(mode="json")
        old = before[agent.id].model_dump(mode="json") if agent.id in before else {}
        for field, value in new.items():
            if field == "id" or (field in old and old[field] == value):
                continue
            changes.append((agent.id, field, old.get(field), value))
    return changes


async def roster_history(pool: asyncpg.Pool, agent_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The roster's changes, newest first: who changed which field of which agent, when, from what to what."""
    rows = await pool.fetch(
        "SELECT agent_id, field, old_value, new_value, changed_by, changed_at FROM agent_changes "
        "WHERE $1::text IS NULL OR agent_id = $1 ORDER BY changed_at DESC, id DESC LIMIT $2",
        agent_id,
        limit,
    )
    return [dict(row) for row in rows]


async def get_system(conn: asyncpg.Pool | asyncpg.Connection, name: str) -> SystemRef | None:
    row = await conn.fetchrow("SELECT name, actions, active FROM systems WHERE name = $1", name)
    return SystemRef(name=row["name"], actions=list(row["actions"]), active=row["active"]) if row else None


async def list_agents(pool: asyncpg.Pool, *, active_only: bool = False) -> list[Agent]:
    """Every agent of the roster, ordered by id."""
    where = "WHERE active" if active_only else ""
    rows = await pool.fetch(f"SELECT {AGENT_COLUMNS} FROM agents {where} ORDER BY id")
    return [agent_from_row(row) for row in rows]


async def get_agent(conn: asyncpg.Pool | asyncpg.Connection, agent_id: str) -> Agent | None:
    row = await conn.fetchrow(f"SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1", agent_id)
    return agent_from_row(row) if row else None
