"""Resolution and closing: the customer has the last word on a resolution; a case closes once its promises are kept
and, on a policy with closing letters (the FCA's), once one of them was sent (closing_refusal)."""

from __future__ import annotations

from datetime import datetime

from schemas.actions import ConfirmResolution, ProposeResolution, RecordFeedback, Withdraw
from schemas.common import Outcome
from schemas.policy import ResolvedPolicy
from schemas.state import CaseOutcome, CaseState, Feedback, Resolution
from workflows import business_time, rules
from workflows.case.common import ENGINE_ACTOR, ESCALATION_ACTOR, iso
from workflows.case.letters import letter_refusal
from workflows.rules import Actor, invalid

# A customer who rates the handling this low (of 5) is reviewed by the supervisor.
FEEDBACK_REVIEW_AT_OR_BELOW = 2


def closing_refusal(state: CaseState, policy: ResolvedPolicy | None, outcome: str) -> str | None:
    """Why the case may not close with `outcome` yet: none of the policy's closing letters was sent.

    A withdrawn complaint needs none. The message names the letter the owner can send now.
    """
    if policy is None or not policy.closing_letters or outcome == "withdrawn":
        return None
    sent = [letter for name in policy.closing_letters if (letter := state.letter(name)) is not None and letter.status == "sent"]
    if any(_since_reopening(state, letter.sent_at) for letter in sent):
        return None
    sendable = [name for name in policy.closing_letters if letter_refusal(state, policy, name) is None]
    sending = [name for name in policy.closing_letters if (letter := state.letter(name)) and letter.status == "sending"]
    if sending:
        step = f"it closes once letter {sending[0]}, being sent by email, has gone"
    else:
        step = f"send it with contact_customer letter={(sendable or policy.closing_letters[-1:])[0]}"
    before = f" (the {sent[0].name} sent before the case reopened answered it as it was then)" if sent else ""
    return (
        f"case {state.complaint_id} cannot close as {outcome} yet: the {policy.name} policy closes a case only once "
        f"the customer was sent its {' or '.join(policy.closing_letters)}{before}; {step}"
    )


def _since_reopening(state: CaseState, sent_at: datetime | None) -> bool:
    return state.reopened_at is None or (sent_at is not None and sent_at >= state.reopened_at)


class ResolutionRules:
    """Proposing and confirming a resolution, withdrawal, feedback, closing; a part of Case (aggregate.py)."""

    # resolution

    def _check_propose(self, a: ProposeResolution, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "propose_resolution")
        if self.state.status == "waiting_on_customer":
            raise invalid(
                "the case is waiting on the customer for "
                f"{', '.join(self.state.awaiting_info)}; record their answer with provide_info first"
            )
        rules.require_status(self.state, {"in_progress"}, "propose_resolution")

    def _apply_propose(self, a: ProposeResolution, actor: Actor, now: datetime) -> None:
        self.state.resolution = Resolution(
            text=a.resolution, root_cause=a.root_cause, proposed_by=actor.name, proposed_at=now
        )
        self.state.root_cause = a.root_cause
        self.state.reminders_since_proposal = 0
        self.state.confirmation_lapsed = False
        self._record("resolution_proposed", actor.name, now, resolution=a.resolution, root_cause=a.root_cause)
        self._enter_status("resolution_proposed", now)
        self._stop_clock("resolution", now, "resolution proposed")
        self._stop_clock("customer_update", now, "resolution proposed")
        self._restart_clock("confirmation", now, "resolution proposed")
        self._letters_on("resolution_proposed", now)

    def _check_confirm(self, a: ConfirmResolution, actor: Actor, now: datetime) -> None:
        rules.require_open(self.state)
        rules.require_customer_or_owner(self.state, actor, "confirm_resolution")
        if actor.kind == "agent" and a.channel is None:
            raise invalid(
                "the owner confirms on the customer's behalf only with the channel the customer "
                "answered through (channel: email, phone, chat, ...)"
            )
        rules.require_status(self.state, {"resolution_proposed"}, "confirm_resolution")

    def _apply_confirm(self, a: ConfirmResolution, actor: Actor, now: datetime) -> None:
        resolution = self.state.resolution
        assert resolution is not None  # guaranteed by status resolution_proposed
        resolution.confirmed = a.satisfied
        resolution.confirmed_at = now
        resolution.comment = a.comment
        channel = a.channel
        self._stop_clock("confirmation", now, "customer answered")
        if not a.satisfied:
            self._record("resolution_rejected", actor.name, now, channel=channel, comment=a.comment)
            self._enter_status("in_progress", now)
            self._resume_stopped_clock("resolution", now)
            self._restart_clock("customer_update", now, "resolution rejected")
            return
        self._record(
            "resolution_confirmed",
            actor.name,
            now,
            channel=channel,
            comment=a.comment,
            open_promises=[p.promise_id for p in self.state.open_promises] or None,
        )
        self._enter_status("follow_through", now)
        if self.state.open_promises:
            self._restart_clock("customer_update", now, "follow-through on open promises")
        self._letters_on("resolution_confirmed", now)
        self._close_if_followed_through(now)

    # withdraw

    def _check_withdraw(self, a: Withdraw, actor: Actor, now: datetime) -> None:
        rules.require_open(self.state)
        if actor.kind != "customer":
            raise rules.not_allowed(
                f"only the customer (customer:{self.state.customer.customer_id}) may withdraw the complaint; "
                f"{actor.name} is not the customer"
            )
        rules.require_this_customer(self.state, actor)

    def _apply_withdraw(self, a: Withdraw, actor: Actor, now: datetime) -> None:
        self._close("withdrawn", now, actor=actor.name, reason=a.reason)

    # feedback

    def _check_feedback(self, a: RecordFeedback, actor: Actor, now: datetime) -> None:
        if actor.kind != "customer":
            raise rules.not_allowed(
                f"only the customer (customer:{self.state.customer.customer_id}) may record feedback; "
                f"{actor.name} is not the customer"
            )
        rules.require_this_customer(self.state, actor)
        rules.require_feedback_open(self.state, now)

    def _apply_feedback(self, a: RecordFeedback, actor: Actor, now: datetime) -> None:
        self.state.feedback = Feedback(score=a.score, comment=a.comment, at=now)
        review = a.score <= FEEDBACK_REVIEW_AT_OR_BELOW
        recipient, role = self._recipient(2)
        self._record(
            "feedback_recorded",
            actor.name,
            now,
            score=a.score,
            comment=a.comment,
            review_by=recipient if review else None,
        )
        if review:
            # Through the outbox, like an escalation: exactly one notice per closing of the case.
            self._record(
                "escalated",
                ESCALATION_ACTOR,
                now,
                clock="feedback",
                level=2,
                occurrence=self.state.reopened + 1,
                recipient=recipient,
                recipient_role=role,
                reason=f"the customer rated the handling {a.score}/5: review the case"
                + (f" ({a.comment[:200]})" if a.comment else ""),
                due_at=now.isoformat(),
                deadline=now.isoformat(),
                overdue=False,
            )

    # --- closing -----------------------------------------------------------

    def _close_if_followed_through(self, now: datetime) -> None:
        """Close once the follow-through is done and the policy's closing letter was sent (closing_refusal)."""
        if self.state.status != "follow_through":
            return
        outcome = rules.closing_outcome(self.state)
        if outcome is None:
            return
        awaits = closing_refusal(self.state, self.policy, outcome)
        if awaits is not None:
            if awaits != self.state.closing_awaits:
                self.state.closing_awaits = awaits
                self._draft_closing_letters(now, awaits)
            return
        self._close(outcome, now)

    def _close(self, outcome: Outcome, now: datetime, actor: str = ENGINE_ACTOR, reason: str | None = None) -> None:
        self.state.status = "closed"
        self.state.outcome = outcome
        self.state.closed_at = now
        self.state.pending_owner = None
        self.state.closing_awaits = None
        if self.policy is not None:
            self.state.feedback_until = business_time.deadline(now, self.policy.feedback_window, self.policy.calendar)
        summary_by = self.state.summary_resolution_by
        self._record(
            "case_closed",
            actor,
            now,
            outcome=outcome,
            reason=reason,
            root_cause=self.state.root_cause,
            promises_kept=self._promises_kept(),
            promises_kept_on_time=self._promises_kept_on_time(),
            promises_total=len(self.state.promises),
            summary_resolution=(outcome == "resolved" and now <= summary_by) if summary_by else None,
            goodwill=[g.goodwill_id for g in self.state.goodwill if g.status == "granted"] or None,
            feedback_until=iso(self.state.feedback_until),
        )
        for clock in list(self.state.clocks):
            self._stop_clock(clock.name, now, "case closed")
        self._skip_waiting_letters(now, "the case closed")

    def outcome(self) -> CaseOutcome:
        if self.state.outcome is None or self.state.closed_at is None:
            raise RuntimeError("the case is not closed")
        return CaseOutcome(
            complaint_id=self.state.complaint_id,
            outcome=self.state.outcome,
            closed_at=self.state.closed_at,
            owner=self.state.owner,
            promises_kept=self._promises_kept(),
            promises_kept_on_time=self._promises_kept_on_time(),
            promises_total=len(self.state.promises),
            escalations=self.escalations,
            root_cause=self.state.root_cause,
            satisfaction=self.state.feedback.score if self.state.feedback is not None else None,
        )

    def _promises_kept(self) -> int:
        return sum(1 for p in self.state.promises if p.status == "kept")

    def _promises_kept_on_time(self) -> int:
        return sum(1 for p in self.state.promises if p.status == "kept" and p.kept_on_time)
