-- 0002: the notifications outbox. record_case_events writes one row per
-- escalation (an `escalated` timeline event) in the same transaction as the
-- event itself; the unique key makes a retried activity or a replayed case
-- notify once. Whoever delivers a row (a person through `starter.py
-- notifications ack`, or a sender process) sets delivered_at.

CREATE TABLE notifications (
    id             bigserial PRIMARY KEY,
    complaint_id   text NOT NULL,
    -- The clock that escalated: acknowledge, first_response, customer_update,
    -- resolution, confirmation, or promise:<promise_id>.
    clock          text NOT NULL,
    level          integer NOT NULL CHECK (level BETWEEN 1 AND 3),
    -- Which time this clock reached this level (a clock restarted and breached again is a new occurrence).
    occurrence     integer NOT NULL DEFAULT 1 CHECK (occurrence >= 1),
    recipient      text NOT NULL,
    recipient_role text NOT NULL,
    reason         text NOT NULL,
    -- When the level was due to fire, and the clock's deadline.
    due_at         timestamptz NOT NULL,
    deadline       timestamptz,
    -- seq of the escalated event in case_events.
    event_seq      integer NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at   timestamptz,
    UNIQUE (complaint_id, clock, level, occurrence)
);

-- The outbox: pending rows, per recipient and oldest first.
CREATE INDEX notifications_pending_idx ON notifications (recipient, created_at) WHERE delivered_at IS NULL;
CREATE INDEX notifications_pending_created_idx ON notifications (created_at, id) WHERE delivered_at IS NULL;
