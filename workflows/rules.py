"""The contract's rules as pure functions: no Temporal, no I/O, no clock.

Each check raises Rejection with a message that says what is wrong and what
would be valid. The workflow turns a Rejection into an ApplicationError (for
an update) or a command_rejected event (for a signal).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from schemas.common import Outcome, Status
from schemas.roster import ENGINE_SYSTEMS, AgentRef, AgentWorkload, SystemRef
from schemas.state import CaseState, Fact, Goodwill

if TYPE_CHECKING:
    from schemas.actions import Action

RejectionKind = Literal["InvalidCommand", "NotAllowed"]

OPEN_STATUSES: frozenset[Status] = frozenset(
    {"assigned", "in_progress", "waiting_on_customer", "resolution_proposed", "follow_through"}
)
# Statuses in which the owner works the case (they have accepted it and it is not closed).
WORKING_STATUSES: frozenset[Status] = OPEN_STATUSES - {"assigned"}


class Rejection(Exception):
    """Why an action may not be applied. The message is for the caller and the timeline, and may quote the
    case's data; `kind` and `fields` (the names of the fields at fault) are what a log line may carry."""

    def __init__(self, kind: RejectionKind, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.fields = fields


def invalid(message: str) -> Rejection:
    return Rejection("InvalidCommand", message)


def not_allowed(message: str) -> Rejection:
    return Rejection("NotAllowed", message)


@dataclass(frozen=True)
class Actor:
    kind: Literal["agent", "customer", "system"]
    id: str

    @property
    def name(self) -> str:
        return self.id if self.kind == "agent" else f"{self.kind}:{self.id}"


def request_digest(action: Action) -> str:
    """A short digest of an action's whole payload: enough to tell a resend from another request."""
    return hashlib.sha256(action.model_dump_json().encode()).hexdigest()[:16]


def parse_actor(raw: str) -> Actor:
    """Parse an already schema-validated actor string."""
    kind, sep, rest = raw.partition(":")
    if not sep:
        return Actor("agent", raw)
    if kind in ("customer", "system"):
        return Actor(kind, rest)  # type: ignore[arg-type]
    raise invalid(f"unknown actor {raw!r}")


# --- who may ---------------------------------------------------------------


def require_open(state: CaseState) -> None:
    if state.status == "closed":
        raise invalid(f"case {state.complaint_id} is closed ({state.outcome}); no further actions are accepted")


def require_owner(state: CaseState, actor: Actor, action: str) -> None:
    if actor.kind != "agent" or actor.id != state.owner:
        raise not_allowed(f"only the case owner ({state.owner}) may {describe(action)}; {actor.name} is not the owner")


def require_accepted(state: CaseState, action: str) -> None:
    if state.status == "assigned":
        raise invalid(f"the owner must accept ownership (accept_ownership) before they {describe(action)}")


def require_status(state: CaseState, allowed: frozenset[Status] | set[Status], action: str) -> None:
    if state.status not in allowed:
        wanted = " or ".join(sorted(allowed))
        raise invalid(f"cannot {describe(action)} while the case is {state.status}; the case must be {wanted}")


def require_customer_or_owner(state: CaseState, actor: Actor, action: str) -> None:
    if actor.kind == "customer":
        require_this_customer(state, actor)
        return
    if actor.kind == "agent" and actor.id == state.owner:
        return
    raise not_allowed(
        f"only the customer (customer:{state.customer.customer_id}) or the owner ({state.owner}) "
        f"may {describe(action)}; {actor.name} is neither"
    )


def require_this_customer(state: CaseState, actor: Actor) -> None:
    if actor.id != state.customer.customer_id:
        raise not_allowed(f"{actor.name} is not this case's customer (customer:{state.customer.customer_id})")


def require_roster_member(actor: Actor, agent: AgentRef | None, action: str) -> None:
    """Any active roster member: `agent` is the roster's record of the actor, None if unknown."""
    if actor.kind != "agent":
        raise not_allowed(f"only roster members may {describe(action)}; {actor.name} is not an agent")
    if agent is None:
        raise not_allowed(f"{actor.id} is not on the roster, so they may not {describe(action)}")
    if not agent.active:
        raise not_allowed(f"{actor.id} is not active on the roster, so they may not {describe(action)}")


def require_registered_system(actor: Actor, record: SystemRef | None, action: str) -> None:
    """A system acts only under a registered name, only with the actions it is registered for, and never as
    one of the engine's own actors (system:engine, system:escalation, system:routing)."""
    if actor.kind != "system":
        return
    if actor.id in ENGINE_SYSTEMS:
        raise not_allowed(f"{actor.name} is the engine's own name; no caller may act as it")
    if record is None:
        raise not_allowed(
            f"{actor.name} is not a registered system; register it in the roster's systems with the actions it may send"
        )
    if not record.active:
        raise not_allowed(f"{actor.name} is not active in the roster's systems")
    if action not in record.actions:
        raise not_allowed(f"{actor.name} may not send {action}; it is registered for {', '.join(record.actions)}")


def may_change_facts(state: CaseState, actor: Actor, facts: dict[str, object]) -> None:
    """A system may add facts; changing one the customer gave needs the customer or the owner."""
    if actor.kind != "system":
        return
    changed = [
        name for name, value in facts.items()
        if (known := state.facts.get(name)) is not None and known.value != value and known.source.startswith("customer:")
    ]  # fmt: skip
    if changed:
        raise Rejection(
            "NotAllowed",
            f"{actor.name} may add facts but not change {', '.join(changed)}, which the customer gave; "
            "the customer or the case owner may correct it",
            tuple(changed),
        )


def may_accept_ownership(state: CaseState, actor: Actor) -> None:
    require_open(state)
    if actor.kind == "agent" and actor.id == state.pending_owner:
        return
    if actor.kind == "agent" and actor.id == state.owner:
        if state.owner_accepted:
            raise invalid(f"{actor.id} has already accepted ownership of this case")
        return
    expected = state.pending_owner or state.owner
    raise not_allowed(f"only the assigned owner ({expected}) may accept ownership; {actor.name} is not")


# --- transfers -------------------------------------------------------------


def may_transfer(state: CaseState, actor: Actor, record: AgentRef | None) -> None:
    """Besides the owner and their supervisor, only an active manager may transfer a case."""
    if actor.kind == "agent" and actor.id in (state.owner, state.supervisor):
        return
    if record is not None and record.role == "manager" and record.active:
        return
    supervisor = f", their supervisor ({state.supervisor})" if state.supervisor else ""
    raise not_allowed(
        f"only the owner ({state.owner}){supervisor} or a manager may transfer this case; {actor.name} is none of them"
    )


def require_transfer_target(workload: AgentWorkload) -> None:
    """The new owner must be an active roster member with room for another case."""
    agent = workload.agent
    if agent is None:
        raise invalid(f"{workload.agent_id} is not on the roster; transfer to an active roster member")
    if not agent.active:
        raise invalid(f"{agent.agent_id} ({agent.name}) is not active on the roster; transfer to an active member")
    if workload.full:
        raise invalid(
            f"{agent.agent_id} ({agent.name}) already owns {workload.open_cases} open cases, their limit "
            f"(max_open_cases {agent.max_open_cases}); transfer to someone with capacity"
        )


# --- goodwill --------------------------------------------------------------


def find_goodwill_awaiting_approval(state: CaseState, goodwill_id: str) -> Goodwill:
    gesture = state.goodwill_gesture(goodwill_id)
    awaiting = ", ".join(g.goodwill_id for g in state.goodwill if g.status == "awaiting_approval") or "none"
    if gesture is None:
        raise invalid(f"no goodwill {goodwill_id!r} on this case; awaiting approval: {awaiting}")
    if gesture.status != "awaiting_approval":
        when = f" by {gesture.decided_by} at {gesture.decided_at.isoformat()}" if gesture.decided_at else ""
        raise invalid(f"goodwill {goodwill_id} is already {gesture.status}{when}; awaiting approval: {awaiting}")
    return gesture


def may_approve_goodwill(actor: Actor, record: AgentRef | None, gesture: Goodwill) -> None:
    """A supervisor or manager whose authority limit covers the amount decides."""
    if record is None or record.role not in ("supervisor", "manager"):
        raise not_allowed(f"only a supervisor or manager may decide on goodwill; {actor.name} is not one")
    if not record.active:
        raise not_allowed(f"{actor.id} is not active on the roster, so they may not decide on goodwill")
    amount = gesture.amount or 0
    if amount > record.authority_limit:
        raise not_allowed(
            f"goodwill {gesture.goodwill_id} is {amount:.2f}{' ' + gesture.currency if gesture.currency else ''}, "
            f"above {actor.id}'s authority limit of {record.authority_limit:.2f}; "
            "someone whose limit covers it must decide"
        )


# --- after closing ---------------------------------------------------------


def require_feedback_open(state: CaseState, now: datetime) -> None:
    if state.status != "closed":
        raise invalid(f"feedback is recorded once the case is closed; it is {state.status}")
    if state.feedback_until is not None and now > state.feedback_until:
        raise invalid(
            f"the feedback window of case {state.complaint_id} closed at {state.feedback_until.isoformat()}"
        )
    if state.feedback is not None:
        raise invalid(
            f"feedback is already recorded for this case (score {state.feedback.score} at "
            f"{state.feedback.at.isoformat()}); it is given once"
        )


def require_reopenable(state: CaseState, now: datetime) -> None:
    """A closed case takes a new contact (and reopens) only within its feedback window."""
    if state.feedback_until is None or now > state.feedback_until:
        until = f" at {state.feedback_until.isoformat()}" if state.feedback_until else ""
        raise invalid(
            f"case {state.complaint_id} is closed and its feedback window ended{until}; "
            f"open a new case with related_case={state.complaint_id!r}"
        )


# --- intake ----------------------------------------------------------------

# Clocks of servers and support systems disagree a little; more than this ahead is a mistake.
RECEIVED_AT_TOLERANCE = timedelta(minutes=5)


def check_received_at(received_at: datetime | None, now: datetime) -> None:
    if received_at is not None and received_at > now + RECEIVED_AT_TOLERANCE:
        raise invalid(
            f"received_at {received_at.isoformat()} is in the future (now is {now.isoformat()}); "
            "give the moment the complaint reached us, or leave it out for now"
        )


# --- never ask twice -------------------------------------------------------


def describe_known_fact(name: str, fact: Fact) -> str:
    via = f" through {fact.channel}" if fact.channel else ""
    return f"{name} is already known: {fact.value!r}, obtained{via} from {fact.source} at {fact.at.isoformat()}"


def never_ask_twice(state: CaseState, fields: list[str]) -> None:
    """The customer is never asked for what we already know, nor asked again while we wait."""
    known = [name for name in fields if name in state.facts]
    if known:
        described = "; ".join(describe_known_fact(name, state.facts[name]) for name in known)
        raise Rejection("InvalidCommand", "do not ask the customer again: " + described, tuple(known))
    pending = [name for name in fields if name in state.awaiting_info]
    if pending:
        raise invalid(
            f"already asked the customer for {', '.join(pending)} and still waiting for the answer; "
            "record it with provide_info when it arrives"
        )


# --- a case's size ------------------------------------------------------------

# A case's state (its CaseState as JSON) stays under this. The state is the answer to every update and most
# of a continue-as-new's input, and Temporal refuses any payload over 2 MB: a state past that would fail
# every workflow task of its case, for ever. Only the actions that add entries (facts, promises, goodwill)
# grow it; the others replace fields bounded by their schemas.
STATE_BUDGET_BYTES = 1024 * 1024
# Room kept for what an action adds besides its own text (ids, times, statuses) and for the actions after it.
_ENTRY_OVERHEAD_BYTES = 4 * 1024


def state_bytes(state: CaseState) -> int:
    return len(state.model_dump_json().encode())


def has_room(used_bytes: int, action_bytes: int) -> bool:
    """Whether an action of action_bytes (its JSON) fits a state of used_bytes: it may add up to twice its size
    (a fact is kept in the state and named in the awaiting list; a promise's text and its clock)."""
    return used_bytes + 2 * action_bytes + _ENTRY_OVERHEAD_BYTES <= STATE_BUDGET_BYTES


def case_full(complaint_id: str, action: str, used_bytes: int) -> Rejection:
    return invalid(
        f"case {complaint_id} is full: its state holds {used_bytes:,} bytes of at most {STATE_BUDGET_BYTES:,}, "
        f"too few for this {action}; keep long material (documents, transcripts) outside the case and refer "
        "to it in a note, or send less at a time"
    )


# --- promises --------------------------------------------------------------


# A promise is due within this long: a later date is a mistake (a year typed wrong), not a promise to track.
PROMISE_HORIZON = timedelta(days=2 * 366)


def require_future(moment: datetime, now: datetime, field: str) -> None:
    """A promise's deadline: in the future, and within PROMISE_HORIZON of now."""
    if moment <= now:
        raise invalid(f"{field} must be in the future (it is {moment.isoformat()}, now is {now.isoformat()})")
    if moment > now + PROMISE_HORIZON:
        raise invalid(
            f"{field} must be within two years (by {(now + PROMISE_HORIZON).isoformat()}); it is "
            f"{moment.isoformat()}: promise a nearer step, and renegotiate it when the date is known"
        )


def find_open_promise(state: CaseState, promise_id: str):
    promise = state.promise(promise_id)
    open_ids = ", ".join(p.promise_id for p in state.open_promises) or "none"
    if promise is None:
        raise invalid(f"no promise {promise_id!r} on this case; open promises: {open_ids}")
    if not promise.is_open:
        raise invalid(f"promise {promise_id} is already {promise.status}; open promises: {open_ids}")
    return promise


# --- closing gate ----------------------------------------------------------


def closing_outcome(state: CaseState) -> Outcome | None:
    """The outcome the case may close with now, or None while follow-through is owed.

    A case closes only when a resolution was proposed with its root cause (or,
    one that cannot be resolved, a granted goodwill gesture settles it: goodwill)
    and every promise is kept: resolved when the customer confirmed it,
    resolved_unconfirmed when the confirmation window passed with no answer
    after at least one reminder contact.
    """
    if state.open_promises or not (state.root_cause and state.root_cause.strip()):
        return None
    resolution = state.resolution
    if resolution is not None and resolution.confirmed is True:
        return "resolved"
    # A complaint that cannot be resolved closes only with a granted gesture that settles it.
    if any(g.settles_case and g.status == "granted" for g in state.goodwill):
        return "goodwill"
    if resolution is not None and resolution.confirmed is None and state.confirmation_lapsed and state.reminders_since_proposal >= 1:
        return "resolved_unconfirmed"
    return None


def next_deadline(state: CaseState) -> datetime | None:
    """The earliest deadline of a running clock; one already breached stays first until cured."""
    due = [clock.due_at for clock in state.clocks if not clock.paused]
    return min(due) if due else None


def describe(action: str) -> str:
    return action.replace("_", " ")
