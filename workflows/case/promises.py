"""Promises to the customer: each one is owed by someone and has its own clock until it is kept."""

from __future__ import annotations

from datetime import datetime

from schemas.actions import KeepPromise, MakePromise, RenegotiatePromise
from schemas.state import Promise
from workflows import clocks, rules
from workflows.rules import Actor, invalid


class PromiseRules:
    """Making, keeping and renegotiating promises; a part of Case (aggregate.py)."""

    def _check_make_promise(self, a: MakePromise, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "make_promise")
        rules.require_future(a.due_at, now, "due_at")
        self._require_room(a, "make_promise")

    def _apply_make_promise(self, a: MakePromise, actor: Actor, now: datetime) -> None:
        promise = Promise(
            promise_id=f"P{len(self.state.promises) + 1}",
            description=a.description,
            owed_by=a.owed_by or actor.id,
            due_at=a.due_at,
            made_at=now,
        )
        self.state.promises.append(promise)
        self._record(
            "promise_made",
            actor.name,
            now,
            promise_id=promise.promise_id,
            description=promise.description,
            owed_by=promise.owed_by,
            due_at=promise.due_at.isoformat(),
        )
        self._start_promise_clock(promise, now)

    def _check_keep_promise(self, a: KeepPromise, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "keep_promise")
        rules.find_open_promise(self.state, a.promise_id)

    def _apply_keep_promise(self, a: KeepPromise, actor: Actor, now: datetime) -> None:
        promise = rules.find_open_promise(self.state, a.promise_id)
        clock = self._clock(clocks.promise_clock_name(promise.promise_id))
        deadline = clock.due_at if clock is not None else promise.due_at
        promise.status = "kept"
        promise.kept_at = now
        promise.kept_on_time = now <= deadline
        promise.evidence = a.evidence
        self._record(
            "promise_kept",
            actor.name,
            now,
            promise_id=promise.promise_id,
            evidence=a.evidence,
            on_time=promise.kept_on_time,
            deadline=deadline.isoformat(),
        )
        self._stop_clock(clocks.promise_clock_name(promise.promise_id), now, "promise kept")
        self._close_if_followed_through(now)

    def _check_renegotiate(self, a: RenegotiatePromise, actor: Actor, now: datetime) -> None:
        self._owner_working(actor, "renegotiate_promise")
        promise = rules.find_open_promise(self.state, a.promise_id)
        rules.require_future(a.new_due_at, now, "new_due_at")
        if a.new_due_at == promise.due_at:
            raise invalid(f"new_due_at is the promise's current deadline ({promise.due_at.isoformat()})")

    def _apply_renegotiate(self, a: RenegotiatePromise, actor: Actor, now: datetime) -> None:
        promise = rules.find_open_promise(self.state, a.promise_id)
        previous = promise.due_at
        promise.due_at = a.new_due_at
        promise.status = "renegotiated"
        promise.renegotiations += 1
        self._record(
            "promise_renegotiated",
            actor.name,
            now,
            promise_id=promise.promise_id,
            previous_due_at=previous.isoformat(),
            new_due_at=a.new_due_at.isoformat(),
            reason=a.reason,
            customer_agreed=True,
            renegotiations=promise.renegotiations,
        )
        self._stop_clock(clocks.promise_clock_name(promise.promise_id), now, "promise renegotiated")
        self._start_promise_clock(promise, now)
