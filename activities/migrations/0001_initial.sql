-- 0001: the initial schema: the roster, the current snapshot of each case, its
-- append-only timeline, its promises and the notifications outbox. Applied once by
-- activities.db.apply_migrations. Before the first release the schema is this one
-- file; from then on every change is a new migration.

CREATE TABLE agents (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    role            text NOT NULL CHECK (role IN ('agent', 'supervisor', 'manager')),
    team            text NOT NULL,
    -- Deferred so a roster can name a supervisor loaded later in the same transaction.
    supervisor_id   text REFERENCES agents (id) DEFERRABLE INITIALLY DEFERRED,
    skills          text[] NOT NULL DEFAULT '{}',
    authority_limit numeric(14, 2) NOT NULL DEFAULT 0 CHECK (authority_limit >= 0),
    max_open_cases  integer NOT NULL DEFAULT 20 CHECK (max_open_cases >= 0),
    active          boolean NOT NULL DEFAULT true,
    -- Where escalations reach them (delivery/): all optional.
    email            text,
    webhook_url      text,
    chat_webhook_url text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (supervisor_id IS DISTINCT FROM id)
);

CREATE INDEX agents_team_role_idx ON agents (team, role) WHERE active;

-- The other systems that act on cases as system:<name>, and the actions each may send.
CREATE TABLE systems (
    name        text PRIMARY KEY,
    actions     text[] NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every change to the roster, field by field: who made it, when, the old and the new value
-- (old NULL: the agent was added, or the field was empty). Written by activities.roster_store.load_roster, never updated.
CREATE TABLE agent_changes (
    id          bigserial PRIMARY KEY,
    agent_id    text NOT NULL,
    field       text NOT NULL,
    old_value   jsonb,
    new_value   jsonb,
    changed_by  text NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX agent_changes_agent_idx ON agent_changes (agent_id, changed_at);

-- One row per complaint: the latest snapshot the workflow recorded.
CREATE TABLE cases (
    complaint_id     text PRIMARY KEY,
    workflow_id      text NOT NULL,
    run_id           text,
    customer_id      text NOT NULL,
    category         text NOT NULL,
    severity         text NOT NULL,
    status           text NOT NULL,
    owner            text,
    policy           text,
    summary          text,
    received_at      timestamptz NOT NULL,
    closed_at        timestamptz,
    outcome          text,
    root_cause       text,
    escalation_level integer NOT NULL DEFAULT 0,
    next_deadline    timestamptz,
    -- seq of the last timeline event reflected in snapshot: a stale write never wins.
    last_seq         integer NOT NULL DEFAULT 0,
    snapshot         jsonb,
    -- The Assignment returned by assign_owner, returned again on a retry.
    assignment       jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Routing counts open cases per owner.
CREATE INDEX cases_open_owner_idx ON cases (owner) WHERE status <> 'closed';
CREATE INDEX cases_status_owner_idx ON cases (status, owner);
CREATE INDEX cases_customer_idx ON cases (customer_id, category);
CREATE INDEX cases_next_deadline_idx ON cases (next_deadline) WHERE status <> 'closed';

-- Append-only timeline: (complaint_id, seq) is written once.
CREATE TABLE case_events (
    complaint_id text NOT NULL,
    seq          integer NOT NULL CHECK (seq >= 0),
    at           timestamptz NOT NULL,
    kind         text NOT NULL,
    actor        text NOT NULL,
    channel      text,
    data         jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (complaint_id, seq)
);

CREATE INDEX case_events_kind_at_idx ON case_events (kind, at);

CREATE TABLE promises (
    complaint_id   text NOT NULL,
    promise_id     text NOT NULL,
    description    text NOT NULL,
    owed_by        text NOT NULL,
    due_at         timestamptz NOT NULL,
    status         text NOT NULL CHECK (status IN ('open', 'kept', 'overdue', 'renegotiated')),
    renegotiations integer NOT NULL DEFAULT 0,
    made_at        timestamptz NOT NULL,
    kept_at        timestamptz,
    evidence       text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (complaint_id, promise_id)
);

CREATE INDEX promises_open_due_idx ON promises (due_at) WHERE status <> 'kept';

-- The notifications outbox: record_case_events writes one row per
-- escalation (an `escalated` timeline event) in the same transaction as the
-- event itself; the unique key makes a retried activity or a replayed case
-- notify once. A delivery workflow per row (workflows/delivery.py) sends it and
-- keeps `status`; a person who acted on it acknowledges it (`notifications ack`).

CREATE TABLE notifications (
    id             bigserial PRIMARY KEY,
    complaint_id   text NOT NULL,
    -- The clock that escalated: acknowledge, first_response, customer_update,
    -- resolution, confirmation, or promise:<promise_id>; undelivered:<id> for the
    -- notice that notification <id> could not be delivered.
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
    -- queued: waiting for its first attempt (or, with no channel for its recipient, for a person);
    -- sending: an attempt is on the wire; retrying: the last attempt failed and another is due;
    -- delivered: a channel took it; dead: every channel gave up (its case's supervisor is told).
    status         text NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'sending', 'retrying', 'delivered', 'dead')),
    attempts       integer NOT NULL DEFAULT 0,
    last_error     text,
    delivered_at   timestamptz,
    -- Who acted on it (`notifications ack --by`), and when.
    acknowledged_by text,
    acknowledged_at timestamptz,
    UNIQUE (complaint_id, clock, level, occurrence)
);

-- A person's inbox: unacknowledged rows, per recipient and oldest first.
CREATE INDEX notifications_pending_idx ON notifications (recipient, created_at) WHERE acknowledged_at IS NULL;
CREATE INDEX notifications_pending_created_idx ON notifications (created_at, id) WHERE acknowledged_at IS NULL;
-- Delivery still to do (the stall monitor and the metrics read it).
CREATE INDEX notifications_undelivered_idx ON notifications (created_at) WHERE status IN ('queued', 'sending', 'retrying');

-- Every delivery attempt, on every channel: written before the request goes out (outcome NULL
-- while on the wire, or forever if the worker died mid-attempt) and completed after.
CREATE TABLE delivery_attempts (
    id              bigserial PRIMARY KEY,
    -- The idempotency key the receiver sees (webhook-id, Message-ID): ntf-<notification id>, or
    -- evt-<subscription id>-<complaint id>-<seq> for a case event sent to a subscription (notification_id NULL).
    delivery_id     text NOT NULL,
    notification_id bigint REFERENCES notifications (id),
    channel         text NOT NULL CHECK (channel IN ('email', 'webhook', 'chat', 'event')),
    target          text NOT NULL,
    attempt         integer NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at     timestamptz,
    outcome         text CHECK (outcome IN ('delivered', 'failed', 'gave_up')),
    response_code   integer,
    error           text,
    worker          text,
    -- Until when this attempt may still be on the wire: another attempt on the route waits for its
    -- outcome or for this instant (activities/route_claims.py). NULL: the attempt holds no claim.
    lease_until     timestamptz
);

CREATE INDEX delivery_attempts_notification_idx ON delivery_attempts (notification_id, id);
CREATE INDEX delivery_attempts_route_idx ON delivery_attempts (delivery_id, target);

-- Webhook endpoints: their signing secrets (the newest first; two while one rotates) and
-- whether they answered 410 Gone, which stops deliveries to them until re-enabled.
CREATE TABLE webhook_endpoints (
    url             text PRIMARY KEY,
    secrets         text[] NOT NULL,
    disabled_at     timestamptz,
    disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Other systems' subscriptions to case events (`starter.py webhooks add|list|remove`): the public event
-- types each wants (delivery/case_events.py) and where they go. Events recorded before created_at are not sent.
CREATE TABLE webhook_subscriptions (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    url         text NOT NULL,
    kinds       text[] NOT NULL CHECK (cardinality(kinds) > 0),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL
);

-- Where each case's feed to a subscription stands (workflows/case_feed.py): the last seq delivered,
-- and the event it stopped at when that one could not be delivered (cleared by `webhooks resume`).
CREATE TABLE subscription_cursors (
    subscription_id bigint NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    complaint_id    text NOT NULL,
    last_seq        integer NOT NULL DEFAULT 0,
    stopped_seq     integer,
    stopped_at      timestamptz,
    stopped_error   text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription_id, complaint_id)
);

CREATE INDEX subscription_cursors_stopped_idx ON subscription_cursors (subscription_id) WHERE stopped_seq IS NOT NULL;
