"""Goodwill: a gesture beyond the owner's authority waits for a supervisor's or manager's decision."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from schemas.actions import ApproveGoodwill, OfferGoodwill
from schemas.state import Goodwill
from workflows import rules
from workflows.rules import Actor, invalid


class GoodwillRules:
    """Offering and approving goodwill gestures; a part of Case (aggregate.py)."""

    def _check_offer_goodwill(self, a: OfferGoodwill, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "offer_goodwill")
        if a.settles_case:
            rules.require_status(
                self.state, {"in_progress", "waiting_on_customer", "resolution_proposed"}, "settle the case with goodwill"
            )
            settling = [g.goodwill_id for g in self.state.goodwill if g.settles_case and g.status == "awaiting_approval"]
            if settling:
                raise invalid(
                    f"goodwill {settling[0]} that settles the case already awaits approval; "
                    "wait for the decision (approve_goodwill) before offering another"
                )
        self._require_room(a, "offer_goodwill")
        self._roster_record(actor.id, current=True)

    def _apply_offer_goodwill(self, a: OfferGoodwill, actor: Actor, now: datetime) -> None:
        owner = self.agents.get(actor.id)
        limit = owner.authority_limit if owner is not None else Decimal(0)
        within = (a.amount or Decimal(0)) <= limit
        gesture = Goodwill(
            goodwill_id=f"G{len(self.state.goodwill) + 1}",
            kind=a.kind,
            amount=a.amount,
            currency=a.currency,
            description=a.description,
            settles_case=a.settles_case,
            root_cause=a.root_cause,
            offered_by=actor.id,
            offered_at=now,
            status="awaiting_approval",
            owner_limit=None if within else limit,
        )
        self.state.goodwill.append(gesture)
        approval = None
        if not within and self.policy is not None:
            approval = self._start_named_clock(
                _goodwill_clock_name(gesture.goodwill_id), "goodwill_approval", self.policy.goodwill_approval, now, now
            )
        self._record(
            "goodwill_offered",
            actor.name,
            now,
            goodwill_id=gesture.goodwill_id,
            kind=gesture.kind,
            amount=_money(gesture.amount),
            currency=gesture.currency,
            description=gesture.description,
            settles_case=gesture.settles_case or None,
            within_authority=within,
            authority_limit=_money(limit),
            decide_by=approval.due_at.isoformat() if approval is not None else None,
        )
        if within:
            self._decide_goodwill(gesture, True, actor.name, now, "within the owner's authority")

    def _check_approve_goodwill(self, a: ApproveGoodwill, actor: Actor, now: datetime) -> None:
        rules.require_open(self.state)
        gesture = rules.find_goodwill_awaiting_approval(self.state, a.goodwill_id)
        if actor.kind != "agent":
            raise rules.not_allowed(f"only a supervisor or manager may decide on goodwill; {actor.name} is not an agent")
        rules.may_approve_goodwill(actor, self._roster_record(actor.id, current=True), gesture)

    def _apply_approve_goodwill(self, a: ApproveGoodwill, actor: Actor, now: datetime) -> None:
        gesture = rules.find_goodwill_awaiting_approval(self.state, a.goodwill_id)
        self._decide_goodwill(gesture, a.approve, actor.name, now, a.comment)

    def _decide_goodwill(self, gesture: Goodwill, approve: bool, by: str, now: datetime, comment: str | None) -> None:
        gesture.status = "granted" if approve else "declined"
        gesture.decided_by = by
        gesture.decided_at = now
        gesture.comment = comment
        self._record(
            "goodwill_decided",
            by,
            now,
            goodwill_id=gesture.goodwill_id,
            approved=approve,
            amount=_money(gesture.amount),
            currency=gesture.currency,
            comment=comment,
            settles_case=gesture.settles_case or None,
        )
        self._stop_clock(_goodwill_clock_name(gesture.goodwill_id), now, "goodwill decided")
        if approve and gesture.settles_case:
            self._settle_with_goodwill(gesture, now)

    def _settle_with_goodwill(self, gesture: Goodwill, now: datetime) -> None:
        """A granted settling gesture ends the work on the complaint: follow through on open promises, then close."""
        self.state.root_cause = gesture.root_cause
        self._enter_status("follow_through", now)
        for name in ("resolution", "customer_update", "confirmation"):
            self._stop_clock(name, now, f"settled with goodwill {gesture.goodwill_id}")
        if self.state.open_promises:
            self._start_clock("customer_update", now, now)
        self._close_if_followed_through(now)


def _money(amount: Decimal | None) -> str | None:
    return f"{amount:.2f}" if amount is not None else None


def _goodwill_clock_name(goodwill_id: str) -> str:
    return f"goodwill:{goodwill_id}"
