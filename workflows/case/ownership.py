"""Ownership: a case always has one accountable owner, who hands over only when the next one accepts."""

from __future__ import annotations

from datetime import datetime

from schemas.actions import AcceptOwnership, TransferOwnership
from schemas.state import Handoff
from workflows import rules
from workflows.rules import Actor, invalid


class OwnershipRules:
    """Accepting, transferring and taking over a case; a part of Case (aggregate.py)."""

    # accept_ownership

    def _check_accept(self, a: AcceptOwnership, actor: Actor, now: datetime) -> None:
        rules.may_accept_ownership(self.state, actor)

    def _apply_accept(self, a: AcceptOwnership, actor: Actor, now: datetime) -> None:
        if actor.id == self.state.pending_owner:
            self._take_over(actor, now)
            return
        self.state.owner_accepted = True
        if self.state.status == "assigned":
            self._enter_status("in_progress", now)
        self._record("ownership_accepted", actor.name, now, owner=self.state.owner)
        self._stop_clock("acknowledge", now, "ownership accepted")

    def _take_over(self, actor: Actor, now: datetime) -> None:
        """The pending owner accepts: they become the owner, with every promise, fact and clock."""
        previous = self.state.owner
        self.state.owner = actor.id
        self.state.pending_owner = None
        self.state.owner_accepted = True
        self.state.transfers += 1
        known = self.agents.get(actor.id)
        if known is not None:
            self.state.supervisor = known.supervisor_id if known.supervisor_id != actor.id else None
        inherited = []
        for promise in self.state.open_promises:
            if promise.owed_by == previous:
                promise.owed_by = actor.id
                inherited.append(promise.promise_id)
        handoff = self.state.handoff
        if handoff is not None and handoff.to_agent == actor.id:
            handoff.accepted_at = now
        if self.state.status == "assigned":
            self._enter_status("in_progress", now)
        self._record(
            "ownership_transferred",
            actor.name,
            now,
            from_owner=previous,
            to_owner=actor.id,
            handoff_note=handoff.note if handoff is not None else None,
            promises_inherited=inherited or None,
            open_promises=[p.promise_id for p in self.state.open_promises] or None,
            facts_known=sorted(self.state.facts) or None,
            supervisor=self.state.supervisor,
        )
        self._record("ownership_accepted", actor.name, now, owner=actor.id)
        self._stop_clock("acceptance", now, "transfer accepted")
        self._stop_clock("acknowledge", now, "ownership accepted")

    # transfer_ownership

    def _check_transfer(self, a: TransferOwnership, actor: Actor, now: datetime) -> None:
        rules.require_open(self.state)
        if a.to_agent == self.state.owner:
            raise invalid(f"{a.to_agent} already owns this case; transfer it to someone else")
        pending = self.state.pending_owner
        if pending is not None:
            since = self.state.handoff.requested_at.isoformat() if self.state.handoff else "earlier"
            raise invalid(
                f"a transfer to {pending} is already pending (requested {since}); {pending} must accept it "
                "(accept_ownership) before the case can move again, so it always has one accountable owner"
            )
        if actor.kind != "agent" or actor.id not in (self.state.owner, self.state.supervisor):
            who = self._roster_record(actor.id, current=True) if actor.kind == "agent" else None
            rules.may_transfer(self.state, actor, who)
        rules.require_transfer_target(self._workload(a.to_agent))

    def _apply_transfer(self, a: TransferOwnership, actor: Actor, now: datetime) -> None:
        self._request_transfer(a.to_agent, a.handoff_note, actor.name, now)

    def _request_transfer(
        self, to_agent: str, note: str, requested_by: str, now: datetime, reason: str | None = None
    ) -> None:
        """Make to_agent the pending owner; the current owner stays accountable until they accept."""
        self.state.pending_owner = to_agent
        self.state.handoff = Handoff(
            from_owner=self.state.owner, to_agent=to_agent, note=note, requested_by=requested_by, requested_at=now
        )
        clock = None
        if self.policy is not None:
            clock = self._start_named_clock("acceptance", "acceptance", self.policy.transfer_acceptance, now, now)
        self._record(
            "ownership_transfer_requested",
            requested_by,
            now,
            from_owner=self.state.owner,
            to_agent=to_agent,
            handoff_note=note,
            reason=reason,
            accept_by=clock.due_at.isoformat() if clock is not None else None,
        )
