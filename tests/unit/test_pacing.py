"""The pacing rule of workflows/pacing.py: which writes wait for a burst's next actions, and until when."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from workflows.pacing import BURST_GAP, GATHER_FOR, gather_until, write_due

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def until(applied_at, previous=None, joins=False, pending=None, closed=False):  # type: ignore[no-untyped-def]
    return gather_until(
        applied_at=applied_at,
        previous_action_at=previous,
        joins_pending_batch=joins,
        pending_until=pending,
        closed=closed,
    )


def test_an_action_after_a_quiet_spell_is_written_at_once():
    assert until(T0) is None  # the run's first action
    assert until(T0 + BURST_GAP, previous=T0) is None
    assert until(T0 + timedelta(minutes=20), previous=T0) is None


def test_an_action_close_behind_the_previous_one_waits_for_the_burst():
    applied = T0 + BURST_GAP - timedelta(milliseconds=1)
    assert until(applied, previous=T0) == applied + GATHER_FOR
    assert until(T0 + timedelta(milliseconds=20), previous=T0) == T0 + timedelta(milliseconds=20) + GATHER_FOR


def test_an_action_joining_waiting_events_keeps_their_deadline():
    # A steady stream still writes every GATHER_FOR: joining never pushes the write later.
    first_until = T0 + GATHER_FOR
    assert until(T0 + timedelta(milliseconds=900), previous=T0, joins=True, pending=first_until) == first_until
    # Events already due at once (an escalation, a quiet action) stay due at once.
    assert until(T0 + timedelta(milliseconds=100), previous=T0, joins=True, pending=None) is None


def test_a_closing_action_is_never_held():
    assert until(T0 + timedelta(milliseconds=100), previous=T0, closed=True) is None
    assert until(T0 + timedelta(milliseconds=100), previous=T0, joins=True, pending=T0 + GATHER_FOR, closed=True) is None


def test_a_held_write_goes_at_its_deadline_or_as_soon_as_anything_needs_it():
    held = T0 + GATHER_FOR

    def due(now, **kwargs):  # type: ignore[no-untyped-def]
        flags = {"writes_awaited": False, "closed": False, "run_ending": False} | kwargs
        return write_due(now=now, until=held, **flags)

    assert not due(T0)
    assert not due(held - timedelta(microseconds=1))
    assert due(held)
    assert due(T0, writes_awaited=True)
    assert due(T0, closed=True)
    assert due(T0, run_ending=True)
    assert write_due(now=T0, until=None, writes_awaited=False, closed=False, run_ending=False)
    # Without a time (the workflow asleep on the gathering's timer) only what cuts it short counts.
    assert not due(None) and due(None, writes_awaited=True) and due(None, closed=True)
    assert write_due(now=None, until=None, writes_awaited=False, closed=False, run_ending=False)
