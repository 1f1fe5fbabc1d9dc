"""What the engine reports: CaseState (query `state`), timeline events, CaseOutcome."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from schemas.common import Channel, FactValue, Outcome, OutputMessage, Severity, Status
from schemas.intake import Customer
from schemas.policy import ResolvedPolicy
from schemas.roster import AgentRef

PromiseStatus = Literal["open", "kept", "overdue", "renegotiated"]
ClockKind = Literal[
    "acknowledge",
    "first_response",
    "customer_update",
    "resolution",
    "confirmation",
    "promise",
    "acceptance",
    "goodwill_approval",
]
GoodwillStatus = Literal["awaiting_approval", "granted", "declined"]
RecipientRole = Literal["owner", "supervisor", "manager"]

# Event kinds this engine writes today; the contract lists more for later features.
EventKind = Literal[
    "complaint_received",
    "owner_assigned",
    "ownership_accepted",
    "customer_contacted",
    "note_added",
    "info_requested",
    "info_provided",
    "promise_made",
    "promise_kept",
    "promise_renegotiated",
    "promise_overdue",
    "escalated",
    "escalation_cleared",
    "ownership_transfer_requested",
    "ownership_transferred",
    "resolution_proposed",
    "resolution_confirmed",
    "resolution_rejected",
    "goodwill_offered",
    "goodwill_decided",
    "contact_received",
    "case_closed",
    "case_reopened",
    "feedback_recorded",
    "command_rejected",
    "policy_applied",
    "clocks_paused",
    "clocks_resumed",
    "letter_drafted",
    "letter_sent",
]
# A letter of the case's policy (docs/lifecycle.md, "Letters"): scheduled to go after a while, drafted for
# the owner, being sent by email, sent, or skipped (not needed any more).
LetterStatus = Literal["scheduled", "drafted", "sending", "sent", "skipped"]


class Fact(OutputMessage):
    value: FactValue
    channel: Channel | None = None
    source: str
    at: datetime


class Promise(OutputMessage):
    promise_id: str
    description: str
    owed_by: str
    due_at: datetime
    status: PromiseStatus = "open"
    renegotiations: int = 0
    made_at: datetime
    kept_at: datetime | None = None
    kept_on_time: bool | None = None
    evidence: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in ("open", "overdue", "renegotiated")


class Clock(OutputMessage):
    """A running deadline. Clock time is elapsed time, or working time for business clocks.

    due_at moves later by the time the clock spent paused (waiting on the
    customer); level is the escalation level reached in this occurrence, and
    occurrence counts restarts (customer_update at each contact, a promise
    at each renegotiation), so each (clock, level, occurrence) notifies once.
    """

    name: str
    kind: ClockKind
    started_at: datetime
    due_at: datetime
    paused: bool = False
    breached: bool = False
    level: int = 0
    occurrence: int = 1
    next_escalation_at: datetime | None = None
    paused_since: datetime | None = None
    paused_seconds: float = 0.0
    business: bool = False
    pauses: bool = True
    target_seconds: float
    level_seconds: list[float]


class Resolution(OutputMessage):
    text: str
    root_cause: str
    proposed_by: str
    proposed_at: datetime
    confirmed: bool | None = None
    confirmed_at: datetime | None = None
    comment: str | None = None


class Letter(OutputMessage):
    """One letter of the case's policy, as it stands: the latest occurrence of its sending.

    occurrence counts the sends begun (it names the email's Message-ID with the case and the letter);
    by: who sends the current one, system:letters or the owner; reason: why it waits for the owner, or was
    skipped; message: the owner's words, only while their letter is being sent.
    """

    name: str
    template: str
    status: LetterStatus
    occurrence: int = 0
    due_at: datetime | None = None
    by: str | None = None
    channel: Channel | None = None
    reason: str | None = None
    message: str | None = None
    version: str | None = None
    message_id: str | None = None
    updated_at: datetime
    sent_at: datetime | None = None


class Handoff(OutputMessage):
    """The latest transfer: what the next owner reads first."""

    from_owner: str | None
    to_agent: str
    note: str
    requested_by: str
    requested_at: datetime
    accepted_at: datetime | None = None


class Goodwill(OutputMessage):
    goodwill_id: str
    kind: str
    amount: Decimal | None = None
    currency: str | None = None
    description: str
    settles_case: bool = False
    root_cause: str | None = None
    offered_by: str
    offered_at: datetime
    status: GoodwillStatus
    # The authority the offer needed: the owner's limit it exceeded, or None when within it.
    owner_limit: Decimal | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None


class Feedback(OutputMessage):
    score: int
    comment: str | None = None
    at: datetime


class CustomerHistory(OutputMessage):
    """The customer's other complaints, loaded at intake so the owner knows who they are talking to."""

    earlier_cases: int = 0
    # "<complaint_id> (<category>, <status>)" for each case of theirs still open.
    open_cases: list[str] = Field(default_factory=list)
    last_complaint_id: str | None = None
    last_outcome: Outcome | None = None
    last_closed_at: datetime | None = None


class CaseState(OutputMessage):
    complaint_id: str
    status: Status
    owner: str | None = None
    owner_accepted: bool = False
    pending_owner: str | None = None
    handoff: Handoff | None = None
    transfers: int = 0
    supervisor: str | None = None
    manager: str | None = None
    customer: Customer
    customer_history: CustomerHistory | None = None
    channel: Channel
    category: str
    severity: Severity
    policy: str
    summary: str
    details: str = ""
    received_at: datetime
    received_by: str | None = None
    escalation_level: int = 0
    promises: list[Promise] = Field(default_factory=list)
    clocks: list[Clock] = Field(default_factory=list)
    facts: dict[str, Fact] = Field(default_factory=dict)
    awaiting_info: list[str] = Field(default_factory=list)
    # FCA DISP 1.5: resolved to the customer's satisfaction by then, a summary resolution communication suffices.
    summary_resolution_by: datetime | None = None
    reminders_since_proposal: int = 0
    # The confirmation window passed after a reminder: the case may close resolved_unconfirmed.
    confirmation_lapsed: bool = False
    goodwill: list[Goodwill] = Field(default_factory=list)
    # The letters of the case's policy that were scheduled, drafted or sent (docs/lifecycle.md, "Letters").
    letters: list[Letter] = Field(default_factory=list)
    # Why a case whose work is done has not closed: the letter the policy requires first.
    closing_awaits: str | None = None
    resolution: Resolution | None = None
    root_cause: str | None = None
    outcome: Outcome | None = None
    closed_at: datetime | None = None
    # After closing: feedback and a reopening contact are accepted until then; the workflow ends at it.
    feedback_until: datetime | None = None
    feedback: Feedback | None = None
    contacts_received: int = 0
    reopened: int = 0
    # When the case last reopened: a closing letter sent before it answered the case as it was then.
    reopened_at: datetime | None = None
    related_case: str | None = None
    next_deadline: datetime | None = None
    event_count: int = 0

    def promise(self, promise_id: str) -> Promise | None:
        return next((p for p in self.promises if p.promise_id == promise_id), None)

    def goodwill_gesture(self, goodwill_id: str) -> Goodwill | None:
        return next((g for g in self.goodwill if g.goodwill_id == goodwill_id), None)

    def letter(self, name: str) -> Letter | None:
        return next((letter for letter in self.letters if letter.name == name), None)

    @property
    def open_promises(self) -> list[Promise]:
        return [p for p in self.promises if p.is_open]


class TimelineEvent(OutputMessage):
    seq: int
    at: datetime
    kind: EventKind
    actor: str
    channel: Channel | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class CaseOutcome(OutputMessage):
    complaint_id: str
    outcome: Outcome
    closed_at: datetime
    owner: str | None
    promises_kept: int
    promises_kept_on_time: int = 0
    promises_total: int
    escalations: int
    root_cause: str | None
    satisfaction: int | None = None


class AppliedRequest(OutputMessage):
    """One request_id a case applied: the action, who sent it and a digest of its payload.

    A request_id belongs to one action: the same id from another actor, for another action or
    with another payload is refused; an exact resend is a no-op.
    """

    request_id: str
    action: str
    actor: str
    digest: str


class CarriedCase(OutputMessage):
    """Everything a case carries into its next run when it continues as new.

    The timeline is bounded: the events not yet written to PostgreSQL plus the
    most recent ones (workflows/case/, CARRIED_TAIL_*); `timeline_offset`
    events come before them and are in `case_events` only. A payload from before
    that bound carried the whole timeline (offset 0). applied_requests: the most
    recent request ids and what each was used for, oldest first (at most REQUEST_ID_MEMORY).
    """

    state: CaseState
    timeline: list[TimelineEvent]
    timeline_offset: int = 0
    applied_requests: list[AppliedRequest] = Field(default_factory=list)
    agents: list[AgentRef] = Field(default_factory=list)
    escalations: int = 0
    policy: ResolvedPolicy | None = None
    stopped_clocks: list[Clock] = Field(default_factory=list)
    persisted_seq: int = 0
    runs: int = 1


class ContinuedCase(OutputMessage):
    """The argument of a continued run (a fresh start takes a ComplaintIntake instead)."""

    continued_case: CarriedCase
    # The encryption key ids the case has met (workflows/payload_keys.py): its signals' verdicts stay as recorded.
    key_ids: list[str] = Field(default_factory=list)
    # How the case checks who is acting, fixed at its start (workflows/identity_check.py).
    identity_mode: Literal["signed", "trusted-callers"] | None = None
