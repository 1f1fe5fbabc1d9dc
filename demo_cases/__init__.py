"""The demo's cases, as a support floor would work them.

Each scenario drives one complaint through the typed client and returns its
outcome; the demo prints them and the integration tests assert on them.
The agents are those of roster/demo.json. SCENARIOS is the table, in the
order the demo works them; the cases live beside it, one module per theme.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from complaint_client import ComplaintClient
from demo_cases.letters import answered_in_writing
from demo_cases.ownership import joined_from_a_second_channel, transferred_with_a_handoff
from demo_cases.promises import information_and_a_kept_promise, promise_escalated_live
from demo_cases.resolutions import resolved_at_first_contact, second_resolution_accepted
from schemas import CaseOutcome


@dataclass(frozen=True)
class Scenario:
    title: str
    story: str
    run: Callable[[ComplaintClient, str], Awaitable[CaseOutcome]]


SCENARIOS: list[Scenario] = [
    Scenario(
        "Resolved at first contact",
        "A customer phones about a late fee; the agent who took the call owns it and fixes it there and then.",
        resolved_at_first_contact,
    ),
    Scenario(
        "Information requested, a promise made and kept, then confirmed",
        "Shop and bank each said the pending charge was the other's job; one owner takes it end to end.",
        information_and_a_kept_promise,
    ),
    Scenario(
        "First resolution rejected, second accepted",
        "A leaking coffee machine: a seal kit does not fix it, a replacement machine does.",
        second_resolution_accepted,
    ),
    Scenario(
        "A promise slips and escalates live",
        "On the demo policy (seconds): the owner is warned before the promise is due, the supervisor when it is overdue.",
        promise_escalated_live,
    ),
    Scenario(
        "Transferred with a handoff, goodwill approved",
        "The first owner hands a refund dispute to the specialist with a note; his goodwill above his limit waits for the supervisor.",
        transferred_with_a_handoff,
    ),
    Scenario(
        "A second contact joins the open case",
        "The customer writes in, then phones: the phone system's complaint joins the same case, with what she said.",
        joined_from_a_second_channel,
    ),
    Scenario(
        "Answered in writing, under the FCA's rules",
        "The engine emails the acknowledgement on receipt; the case closes only once the owner has posted the final response.",
        answered_in_writing,
    ),
]
