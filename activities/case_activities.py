"""The case activities: I/O only, each idempotent so Temporal may retry it freely."""

from __future__ import annotations

from typing import Any, Callable

import asyncpg
import structlog
from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.case_feed_starter import CaseFeedStarter
from activities.customer_store import customer_history
from activities.delivery_starter import DeliveryStarter
from delivery import metrics
from delivery.case_events import public_types_of
from activities.roster_store import AGENT_COLUMNS, agent_from_row, agent_ref, get_agent, get_system
from activities.routing import Candidate, NoActiveAgentError, choose_owner
from schemas.activity_io import AssignOwnerInput, CustomerHistoryInput, RecordCaseEvents
from schemas.errors import describe_validation_error
from schemas.notifications import EscalationNotice
from schemas.roster import Agent, AgentRef, AgentWorkload, Assignment, SystemRef
from schemas.state import CustomerHistory, TimelineEvent

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
        (one round trip, atomic; README, "Performance"): the events, their
        notifications, the snapshot unless a newer one is there, and only the
        promises that changed. A seq already stored with other content is a bug
        (two histories for one case?): nothing is written and the activity fails,
        non-retryable, naming the seqs.
        """
        state = inp.state
        log = _logger(complaint_id=state.complaint_id, workflow_id=inp.workflow_id)
        batch = _BatchColumns(inp, log)
        row = await self.pool.fetchrow(
            _RECORD_CASE_EVENTS, state.complaint_id, inp.workflow_id, inp.run_id, *batch.columns
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
        queued = _log_queued(row, log)
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

class _BatchColumns:
    """The columns a batch write sends, in its statement's parameter order after the case's ids:
    the events, the notifications of its escalations, the snapshot, the promises, the events' public types."""

    def __init__(self, inp: RecordCaseEvents, log: Any) -> None:
        state, events = inp.state, inp.events
        notices = _escalation_notices(events, log)
        promises = state.promises
        self.last_seq = max([e.seq for e in events] + [state.event_count])
        self.columns: list[Any] = [
            [e.seq for e in events],
            [e.at for e in events],
            [e.kind for e in events],
            [e.actor for e in events],
            [e.channel for e in events],
            [e.data for e in events],
            [n.clock for _, n in notices],
            [n.level for _, n in notices],
            [n.occurrence for _, n in notices],
            [n.recipient for _, n in notices],
            [n.recipient_role for _, n in notices],
            [n.reason for _, n in notices],
            [n.due_at for _, n in notices],
            [n.deadline for _, n in notices],
            [seq for seq, _ in notices],
            state.customer.customer_id,
            state.category,
            state.severity,
            state.status,
            state.owner,
            state.policy,
            state.summary,
            state.received_at,
            state.closed_at,
            state.outcome,
            state.root_cause,
            state.escalation_level,
            state.next_deadline,
            self.last_seq,
            state.model_dump(mode="json"),
            [p.promise_id for p in promises],
            [p.description for p in promises],
            [p.owed_by for p in promises],
            [p.due_at for p in promises],
            [p.status for p in promises],
            [p.renegotiations for p in promises],
            [p.made_at for p in promises],
            [p.kept_at for p in promises],
            [p.evidence for p in promises],
            public_types_of(e.kind for e in events),
        ]


def _log_queued(row: asyncpg.Record, log: Any) -> list[dict[str, Any]]:
    """Log each notification the write queued (once committed: none a retry found already there)."""
    queued = row["queued"] or []
    for notice in queued:
        log.info("notification queued", **notice)
    return queued


def _escalation_notices(events: list[TimelineEvent], log: Any) -> list[tuple[int, EscalationNotice]]:
    """(seq, notice) of each `escalated` event; one whose data cannot be read is logged and skipped.

    The timeline keeps the event either way: the outbox is derived from it, and a
    case must never stop recording because of one malformed notice.
    """
    notices = []
    for event in events:
        if event.kind != "escalated":
            continue
        try:
            notices.append((event.seq, EscalationNotice.model_validate(event.data)))
        except ValidationError as error:
            log.error(
                "escalated event not queued as a notification",
                seq=event.seq,
                error=describe_validation_error(error, "escalation notice"),
            )
    return notices


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


def _promised_cte(first: int) -> str:
    """The `promised` step both writes share: upsert the promises that changed (parameters $first to
    $first+8), only when the snapshot was written."""
    a = [f"${first + i}" for i in range(9)]
    return f"""promised AS (
    INSERT INTO promises (complaint_id, promise_id, description, owed_by, due_at, status,
                          renegotiations, made_at, kept_at, evidence)
    SELECT $1, p.promise_id, p.description, p.owed_by, p.due_at, p.status, p.renegotiations, p.made_at,
           p.kept_at, p.evidence
    FROM unnest({a[0]}::text[], {a[1]}::text[], {a[2]}::text[], {a[3]}::timestamptz[], {a[4]}::text[], {a[5]}::int[],
                {a[6]}::timestamptz[], {a[7]}::timestamptz[], {a[8]}::text[])
         AS p(promise_id, description, owed_by, due_at, status, renegotiations, made_at, kept_at, evidence)
    WHERE EXISTS (SELECT 1 FROM snapshot)
    ON CONFLICT (complaint_id, promise_id) DO UPDATE SET
        description = EXCLUDED.description,
        owed_by = EXCLUDED.owed_by,
        due_at = EXCLUDED.due_at,
        status = EXCLUDED.status,
        renegotiations = EXCLUDED.renegotiations,
        made_at = EXCLUDED.made_at,
        kept_at = EXCLUDED.kept_at,
        evidence = EXCLUDED.evidence,
        updated_at = now()
    WHERE (promises.description, promises.owed_by, promises.due_at, promises.status, promises.renegotiations,
           promises.made_at, promises.kept_at, promises.evidence)
          IS DISTINCT FROM (EXCLUDED.description, EXCLUDED.owed_by, EXCLUDED.due_at, EXCLUDED.status,
                            EXCLUDED.renegotiations, EXCLUDED.made_at, EXCLUDED.kept_at, EXCLUDED.evidence)
    RETURNING 1
)"""


# The whole write of record_case_events: one statement, one round trip, atomic.
# conflicts  batch events whose seq is stored with other content; when there is one, nothing is written
# written    the new events (a retry finds its rows there and writes none)
# queued     one notification per escalation, once per (clock, level, occurrence)
# snapshot   the cases row, unless a newer snapshot (higher last_seq) is there
# promised   the promises that changed, with the snapshot
# subscribed the active subscriptions that want a type of the batch's events (none read when it has no such type)
_RECORD_CASE_EVENTS = """
WITH batch AS (
    SELECT * FROM unnest($4::int[], $5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::jsonb[])
         AS e(seq, at, kind, actor, channel, data)
),
conflicts AS (
    SELECT c.seq, c.kind AS stored_kind, e.kind AS new_kind
    FROM batch e JOIN case_events c ON c.complaint_id = $1 AND c.seq = e.seq
    WHERE (c.at, c.kind, c.actor, c.channel, c.data) IS DISTINCT FROM (e.at, e.kind, e.actor, e.channel, e.data)
),
go AS (
    SELECT NOT EXISTS (SELECT 1 FROM conflicts) AS ok
),
written AS (
    INSERT INTO case_events (complaint_id, seq, at, kind, actor, channel, data)
    SELECT $1, e.seq, e.at, e.kind, e.actor, e.channel, e.data FROM batch e
    WHERE (SELECT ok FROM go)
    ON CONFLICT (complaint_id, seq) DO NOTHING
    RETURNING seq
),
queued AS (
    INSERT INTO notifications (complaint_id, clock, level, occurrence, recipient, recipient_role,
                               reason, due_at, deadline, event_seq)
    SELECT $1, n.clock, n.level, n.occurrence, n.recipient, n.recipient_role, n.reason, n.due_at, n.deadline, n.event_seq
    FROM unnest($10::text[], $11::int[], $12::int[], $13::text[], $14::text[], $15::text[],
                $16::timestamptz[], $17::timestamptz[], $18::int[])
         AS n(clock, level, occurrence, recipient, recipient_role, reason, due_at, deadline, event_seq)
    WHERE (SELECT ok FROM go)
    ORDER BY n.event_seq
    ON CONFLICT (complaint_id, clock, level, occurrence) DO NOTHING
    RETURNING id, clock, level, occurrence, recipient, recipient_role, due_at
),
snapshot AS (
    INSERT INTO cases (complaint_id, workflow_id, run_id, customer_id, category, severity,
                       status, owner, policy, summary, received_at, closed_at, outcome,
                       root_cause, escalation_level, next_deadline, last_seq, snapshot)
    SELECT $1, $2, $3, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33
    WHERE (SELECT ok FROM go)
    ON CONFLICT (complaint_id) DO UPDATE SET
        workflow_id = EXCLUDED.workflow_id,
        run_id = EXCLUDED.run_id,
        customer_id = EXCLUDED.customer_id,
        category = EXCLUDED.category,
        severity = EXCLUDED.severity,
        status = EXCLUDED.status,
        owner = COALESCE(EXCLUDED.owner, cases.owner),
        policy = EXCLUDED.policy,
        summary = EXCLUDED.summary,
        received_at = EXCLUDED.received_at,
        closed_at = EXCLUDED.closed_at,
        outcome = EXCLUDED.outcome,
        root_cause = EXCLUDED.root_cause,
        escalation_level = EXCLUDED.escalation_level,
        next_deadline = EXCLUDED.next_deadline,
        last_seq = EXCLUDED.last_seq,
        snapshot = EXCLUDED.snapshot,
        updated_at = now()
    WHERE cases.last_seq < EXCLUDED.last_seq
    RETURNING 1
),
subscribed AS (
    SELECT id FROM webhook_subscriptions
    WHERE cardinality($43::text[]) > 0 AND active AND kinds && $43::text[] AND (SELECT ok FROM go)
),
{promised}
SELECT (SELECT json_agg(json_build_object('seq', seq, 'stored_kind', stored_kind, 'new_kind', new_kind) ORDER BY seq)
        FROM conflicts) AS conflicts,
       (SELECT count(*) FROM written) AS inserted,
       (SELECT json_agg(json_build_object(
            'notification_id', id, 'recipient', recipient, 'recipient_role', recipient_role, 'clock', clock,
            'level', level, 'occurrence', occurrence, 'due_at', due_at) ORDER BY id)
        FROM queued) AS queued,
       (SELECT array_agg(id) FROM (SELECT id FROM queued UNION
                                   SELECT id FROM notifications WHERE complaint_id = $1 AND event_seq = ANY($18::int[])) ids)
           AS notification_ids,
       EXISTS (SELECT 1 FROM snapshot) AS snapshot_written,
       (SELECT count(*) FROM promised) AS promises_written,
       (SELECT array_agg(id) FROM subscribed) AS subscription_ids
""".replace("{promised}", _promised_cte(34))
