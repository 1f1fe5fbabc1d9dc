"""The case activities: I/O only, each idempotent so Temporal may retry it freely."""

from __future__ import annotations

from typing import Any, Callable

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.case_feed_starter import CaseFeedStarter
from activities.customer_store import customer_history
from activities.delivery_starter import DeliveryStarter
from delivery import metrics
from activities.case_events_write import RECORD_CASE_EVENTS, BatchColumns, log_queued
from activities.roster_store import AGENT_COLUMNS, agent_from_row, agent_ref, get_agent, get_system
from activities.routing import Candidate, NoActiveAgentError, choose_owner
from schemas.activity_io import AssignOwnerInput, CustomerHistoryInput, RecordCaseEvents
from schemas.roster import Agent, AgentRef, AgentWorkload, Assignment, SystemRef
from schemas.state import CustomerHistory

# Serializes assignments: the open-case counts read by one are final before the next reads them.
ASSIGN_LOCK_KEY = 0x636F6D706C_03


def _logger(**context: Any) -> structlog.typing.FilteringBoundLogger:
    if activity.in_activity():
        info = activity.info()
        context.update(activity=info.activity_type, attempt=info.attempt)
    return structlog.get_logger().bind(**context)


class CaseActivities:
    def __init__(self, pool: asyncpg.Pool, deliveries: DeliveryStarter | None = None,
                 feeds: CaseFeedStarter | None = None) -> None:
        self.pool = pool
        # Starts each queued notification's delivery (workflows/delivery.py); None: rows wait for a person.
        self.deliveries = deliveries
        # Wakes the case's feed to each subscription that wants a batch's events (workflows/case_feed.py).
        self.feeds = feeds

    def all(self) -> list[Callable[..., Any]]:
        """The bound activities, for Worker(activities=...)."""
        return [self.lookup_agent, self.lookup_system, self.agent_workload, self.record_case_events]

    # -- assign_owner -------------------------------------------------------

    async def assign_owner(self, inp: AssignOwnerInput) -> Assignment:
        """Choose the case's owner once; a retry (or a second call) returns the same assignment."""
        log = _logger(complaint_id=inp.complaint_id, workflow_id=inp.workflow_id)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", ASSIGN_LOCK_KEY)
            existing = await conn.fetchrow(
                "SELECT owner, assignment FROM cases WHERE complaint_id = $1", inp.complaint_id
            )
            roster = {
                row["id"]: agent_from_row(row)
                for row in await conn.fetch(f"SELECT {AGENT_COLUMNS} FROM agents ORDER BY id")
            }
            if existing is not None and existing["owner"]:
                assignment = self._existing_assignment(existing, roster)
                log.info("owner already assigned", owner=assignment.owner.agent_id)
                return assignment

            counts = {
                row["owner"]: row["n"]
                for row in await conn.fetch(
                    "SELECT owner, count(*) AS n FROM cases "
                    "WHERE status <> 'closed' AND owner IS NOT NULL GROUP BY owner"
                )
            }
            candidates = [Candidate(agent, counts.get(agent.id, 0)) for agent in roster.values()]
            try:
                route = choose_owner(inp.received_by, inp.category, candidates)
            except NoActiveAgentError as err:
                log.warning("no active agent to own the case", error=str(err))
                # Retryable: the case waits (the message shows in the UI) until a roster is loaded.
                raise ApplicationError(str(err), type="NoActiveAgent") from err

            supervisor, manager = _escalation_chain(route.agent, roster)
            assignment = Assignment(
                owner=agent_ref(route.agent),
                supervisor=agent_ref(supervisor) if supervisor else None,
                manager=agent_ref(manager) if manager else None,
                routed_by=route.routed_by,
                reason=route.reason,
            )
            await conn.execute(
                """
                INSERT INTO cases (complaint_id, workflow_id, customer_id, category, severity,
                                   status, owner, policy, summary, received_at, assignment)
                VALUES ($1, $2, $3, $4, $5, 'assigned', $6, $7, $8, $9, $10)
                ON CONFLICT (complaint_id) DO UPDATE SET
                    owner = EXCLUDED.owner,
                    assignment = EXCLUDED.assignment,
                    updated_at = now()
                """,
                inp.complaint_id,
                inp.workflow_id,
                inp.customer_id,
                inp.category,
                inp.severity,
                route.agent.id,
                inp.policy,
                inp.summary,
                inp.received_at,
                assignment.model_dump(mode="json"),
            )
        log.info("owner assigned", owner=route.agent.id, routed_by=route.routed_by, reason=route.reason)
        return assignment

    @staticmethod
    def _existing_assignment(existing: asyncpg.Record, roster: dict[str, Agent]) -> Assignment:
        stored = existing["assignment"]
        if stored and stored.get("owner", {}).get("agent_id") == existing["owner"]:
            return Assignment.model_validate(stored)
        # The owner was recorded by a snapshot (e.g. after a transfer): describe that owner.
        owner_id = existing["owner"]
        owner = roster.get(owner_id)
        if owner is None:
            ref = AgentRef(agent_id=owner_id, name=owner_id, role="agent", team="", active=False)
            return Assignment(owner=ref, routed_by="routing", reason=f"case already owned by {owner_id} (not on the roster)")
        supervisor, manager = _escalation_chain(owner, roster)
        return Assignment(
            owner=agent_ref(owner),
            supervisor=agent_ref(supervisor) if supervisor else None,
            manager=agent_ref(manager) if manager else None,
            routed_by="routing",
            reason=f"case already owned by {owner.name} ({owner.id})",
        )

    # -- lookup_agent -------------------------------------------------------

    @activity.defn(name="lookup_agent")
    async def lookup_agent(self, agent_id: str) -> AgentRef | None:
        """The roster entry of agent_id (active or not), or None if unknown."""
        agent = await get_agent(self.pool, agent_id)
        return agent_ref(agent) if agent else None

    # -- agent_workload -----------------------------------------------------

    @activity.defn(name="lookup_system")
    async def lookup_system(self, name: str) -> SystemRef | None:
        """The registered system of this name (None: not registered), for the rule on who may act."""
        return await get_system(self.pool, name)

    @activity.defn(name="agent_workload")
    async def agent_workload(self, agent_id: str) -> AgentWorkload:
        """A transfer target's roster entry and how many open cases they own (read only)."""
        async with self.pool.acquire() as conn:
            agent = await get_agent(conn, agent_id)
            open_cases = await conn.fetchval(
                "SELECT count(*) FROM cases WHERE owner = $1 AND status <> 'closed'", agent_id
            )
        return AgentWorkload(agent_id=agent_id, agent=agent_ref(agent) if agent else None, open_cases=open_cases)

    # -- load_customer_history ----------------------------------------------

    async def load_customer_history(self, inp: CustomerHistoryInput) -> CustomerHistory:
        """Know the customer: their other cases (read only, so any retry is harmless)."""
        history = await customer_history(self.pool, inp.customer_id, inp.complaint_id)
        _logger(complaint_id=inp.complaint_id).info(
            "customer history loaded", earlier_cases=history.earlier_cases, open_cases=len(history.open_cases)
        )
        return history

    # -- record_case_events -------------------------------------------------

    @activity.defn(name="record_case_events")
    async def record_case_events(self, inp: RecordCaseEvents) -> None:
        """Append the events (each (complaint_id, seq) written once) and refresh the snapshot.

        Each `escalated` event also queues one row in the notifications outbox, once
        per (complaint_id, clock, level, occurrence). Everything in one statement
        (one round trip, atomic; activities/case_events_write.py): the events, their
        notifications, the snapshot unless a newer one is there, and only the
        promises that changed. A seq already stored with other content is a bug
        (two histories for one case?): nothing is written and the activity fails,
        non-retryable, naming the seqs.
        """
        state = inp.state
        log = _logger(complaint_id=state.complaint_id, workflow_id=inp.workflow_id)
        batch = BatchColumns(inp, log)
        row = await self.pool.fetchrow(
            RECORD_CASE_EVENTS, state.complaint_id, inp.workflow_id, inp.run_id, *batch.columns
        )
        conflicts = row["conflicts"]
        if conflicts:
            detail = ", ".join(f"seq {c['seq']} (stored {c['stored_kind']}, new {c['new_kind']})" for c in conflicts)
            log.error("timeline conflict", seqs=[c["seq"] for c in conflicts])
            raise ApplicationError(
                f"case {state.complaint_id}: events already recorded with different content "
                f"at {detail}; the timeline is append-only, so this is a bug in the workflow "
                "(two histories for one case?)",
                type="TimelineConflict",
                non_retryable=True,
            )
        queued = log_queued(row, log)
        metrics.QUEUED.inc(len(queued))
        if self.deliveries is not None and row["notification_ids"]:
            # After the commit, and again on a retry (the ids then come from the rows already there).
            await self.deliveries.start(state.complaint_id, row["notification_ids"])
        if self.feeds is not None and row["subscription_ids"]:
            await self.feeds.wake(state.complaint_id, row["subscription_ids"])
        log.info(
            "case events recorded",
            events=len(inp.events),
            new_events=row["inserted"],
            notifications_queued=len(queued),
            last_seq=batch.last_seq,
            snapshot_written=row["snapshot_written"],
            promises_written=row["promises_written"],
        )


def _escalation_chain(owner: Agent, roster: dict[str, Agent]) -> tuple[Agent | None, Agent | None]:
    """The owner's supervisor, and the manager above them (or a manager of the team, or any)."""
    supervisor = roster.get(owner.supervisor_id) if owner.supervisor_id else None
    manager = roster.get(supervisor.supervisor_id) if supervisor and supervisor.supervisor_id else None
    if manager is None:
        managers = [
            a for a in sorted(roster.values(), key=lambda a: a.id)
            if a.role == "manager" and a.active and a.id != owner.id
        ]
        manager = next((m for m in managers if m.team == owner.team), None) or next(iter(managers), None)
    return supervisor, manager
