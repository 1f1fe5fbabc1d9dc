"""record_case_events' one statement: its SQL, and the columns a batch sends to it.

One round trip, atomic: the events (each (complaint_id, seq) written once), a notifications row per
escalation, the snapshot unless a newer one is there, the promises that changed, and the active
subscriptions that want a kind of the batch (delivery/case_events.py).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import ValidationError

from delivery.case_events import public_types_of
from schemas.activity_io import RecordCaseEvents
from schemas.errors import describe_validation_error
from schemas.notifications import EscalationNotice
from schemas.state import TimelineEvent


class BatchColumns:
    """The columns a batch write sends, in its statement's parameter order after the case's ids:
    the events, the notifications of its escalations, the snapshot, the promises, the events' public types."""

    def __init__(self, inp: RecordCaseEvents, log: Any) -> None:
        state, events = inp.state, inp.events
        notices = escalation_notices(events, log)
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


def log_queued(row: asyncpg.Record, log: Any) -> list[dict[str, Any]]:
    """Log each notification the write queued (once committed: none a retry found already there)."""
    queued = row["queued"] or []
    for notice in queued:
        log.info("notification queued", **notice)
    return queued


def escalation_notices(events: list[TimelineEvent], log: Any) -> list[tuple[int, EscalationNotice]]:
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


def promised_cte(first: int) -> str:
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
RECORD_CASE_EVENTS = """
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
""".replace("{promised}", promised_cte(34))
