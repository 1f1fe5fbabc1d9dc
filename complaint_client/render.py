"""Plain-text views of a case for terminals: the CLI and the demo print these."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Iterable

from schemas import CaseOutcome, CaseState, TimelineEvent

# The data field that says the most about each kind of event, shown first.
_HEADLINE = {
    "complaint_received": "summary",
    "owner_assigned": "reason",
    "customer_contacted": "summary",
    "note_added": "text",
    "info_requested": "question",
    "info_provided": "facts",
    "promise_made": "description",
    "promise_kept": "evidence",
    "promise_renegotiated": "reason",
    "resolution_proposed": "resolution",
    "resolution_confirmed": "comment",
    "resolution_rejected": "comment",
    "command_rejected": "reason",
    "case_closed": "outcome",
    "escalated": "reason",
    "escalation_cleared": "cause",
    "ownership_transfer_requested": "handoff_note",
    "ownership_transferred": "handoff_note",
    "goodwill_offered": "description",
    "goodwill_decided": "comment",
    "contact_received": "summary",
    "case_reopened": "reason",
    "feedback_recorded": "score",
    "policy_applied": "policy",
    "clocks_paused": "reason",
}


# What a terminal must never receive from a case's text: C0 and C1 controls (a newline in a note could
# draw a forged timeline line, an escape sequence could recolour or clear the screen) and the bidi
# overrides and isolates (they reorder what is shown). Each is shown escaped instead.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every control and bidi-override character escaped (\\n, \\x1b, \\u202e)."""
    return _UNPRINTABLE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


def _lines(lines: list[str]) -> str:
    return "\n".join(printable(line) for line in lines)


def render_timeline(events: Iterable[TimelineEvent]) -> str:
    lines = []
    for event in events:
        channel = f" via {event.channel}" if event.channel else ""
        lines.append(f"  {event.seq:>3}  {_time(event.at)}  {event.kind:<22} {event.actor}{channel}")
        detail = _detail(event)
        if detail:
            lines.append(f"{'':>34}{detail}")
    return _lines(lines)


def render_state(state: CaseState) -> str:
    owner = state.owner or "(being assigned)"
    if state.owner and not state.owner_accepted:
        owner += " (not yet accepted)"
    lines = [f"Case {state.complaint_id}: {state.summary}"]
    handoff = state.handoff
    if handoff is not None:
        # The next owner reads the handoff first, so the customer never has to repeat themselves.
        taken = f"accepted {_time(handoff.accepted_at)}" if handoff.accepted_at else "awaiting acceptance"
        lines.append(f"  handoff     from {handoff.from_owner} to {handoff.to_agent} ({taken}): {handoff.note}")
    lines += [
        f"  status      {state.status}" + (f" ({state.outcome})" if state.outcome else ""),
        f"  owner       {owner}" + (f", supervisor {state.supervisor}" if state.supervisor else ""),
        f"  customer    {state.customer.name} ({state.customer.customer_id}){_history(state)}",
        f"  category    {state.category}, severity {state.severity}, policy {state.policy}, via {state.channel}",
        f"  received    {_time(state.received_at)}",
    ]
    if state.pending_owner:
        lines.append(f"  pending     transfer to {state.pending_owner}; {state.owner} stays accountable until they accept")
    if state.related_case:
        lines.append(f"  related     follows case {state.related_case}")
    if state.reopened or state.contacts_received:
        lines.append(f"  contacts    {state.contacts_received} more since intake; reopened {state.reopened} time(s)")
    if state.facts:
        facts = ", ".join(f"{name}={fact.value!r} ({fact.channel or 'n/a'})" for name, fact in state.facts.items())
        lines.append(f"  facts       {facts}")
    if state.awaiting_info:
        lines.append(f"  awaiting    {', '.join(state.awaiting_info)} from the customer")
    for promise in state.promises:
        lines.append(
            f"  promise     {promise.promise_id} [{promise.status}] {promise.description} "
            f"(owed by {promise.owed_by}, due {_time(promise.due_at)})"
        )
    if state.resolution:
        verdict = {None: "awaiting the customer", True: "confirmed", False: "rejected"}[state.resolution.confirmed]
        lines.append(f"  resolution  {state.resolution.text} ({verdict})")
        lines.append(f"  root cause  {state.resolution.root_cause}")
    for gesture in state.goodwill:
        amount = f" {gesture.amount:.2f}{' ' + gesture.currency if gesture.currency else ''}" if gesture.amount is not None else ""
        settles = ", settles the case" if gesture.settles_case else ""
        decided = f" by {gesture.decided_by}" if gesture.decided_by else ""
        lines.append(f"  goodwill    {gesture.goodwill_id} [{gesture.status}{decided}] {gesture.kind}{amount}: {gesture.description}{settles}")
    if state.feedback is not None:
        comment = f": {state.feedback.comment}" if state.feedback.comment else ""
        lines.append(f"  feedback    {state.feedback.score}/5{comment}")
    elif state.feedback_until is not None:
        lines.append(f"  feedback    open until {_time(state.feedback_until)}")
    if state.escalation_level:
        lines.append(f"  escalation  level {state.escalation_level}")
    for clock in state.clocks:
        flags = [flag for flag, on in (("paused", clock.paused), ("breached", clock.breached)) if on]
        if clock.level:
            flags.append(f"level {clock.level}")
        suffix = f" [{', '.join(flags)}]" if flags else ""
        lines.append(f"  clock       {clock.name:<16} due {_time(clock.due_at)}{suffix}")
    if state.next_deadline:
        lines.append(f"  next due    {_time(state.next_deadline)}")
    lines.append(f"  events      {state.event_count}")
    return _lines(lines)


def _history(state: CaseState) -> str:
    history = state.customer_history
    if history is None or history.earlier_cases == 0:
        return ", first complaint" if history is not None else ""
    parts = [f"{history.earlier_cases} earlier case{'s' if history.earlier_cases != 1 else ''}"]
    if history.last_outcome:
        parts.append(f"last closed {history.last_outcome} ({history.last_complaint_id})")
    if history.open_cases:
        parts.append(f"still open: {', '.join(history.open_cases)}")
    return "; " + "; ".join(parts)


def render_outcome(outcome: CaseOutcome) -> str:
    return printable(
        f"{outcome.complaint_id}: {outcome.outcome} at {_time(outcome.closed_at)} by {outcome.owner}; "
        f"promises kept {outcome.promises_kept}/{outcome.promises_total} "
        f"({outcome.promises_kept_on_time} on time); escalations {outcome.escalations}; root cause: {outcome.root_cause}"
        + (f"; satisfaction {outcome.satisfaction}/5" if outcome.satisfaction is not None else "")
    )


def _detail(event: TimelineEvent) -> str:
    data: dict[str, Any] = dict(event.data)
    headline_key = _HEADLINE.get(event.kind)
    parts = []
    if headline_key and headline_key in data:
        parts.append(_value(data.pop(headline_key)))
    parts += [f"{key}={_value(value)}" for key, value in data.items()]
    text = "; ".join(parts)
    return text if len(text) <= 160 else text[:157] + "..."


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
