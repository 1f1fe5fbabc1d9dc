"""The demo's customers: new on every run, so each run opens its own cases."""

from __future__ import annotations


def customer_id(base: str, complaint_id: str) -> str:
    """A customer of this run only: with one case per problem, a customer and category seen in an
    earlier run (within its feedback window) would reopen that run's case instead of opening one."""
    return f"{base}-{complaint_id}"[:64]
