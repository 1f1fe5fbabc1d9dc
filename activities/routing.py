"""Choosing the accountable owner of a new case: a pure function, no I/O.

Rules, in order:

1. ``received_by``: whoever received the complaint owns it, if they are on
   the roster and active (whatever their role, skills or load).
2. ``routing``: an active agent (role ``agent``) whose skills include the
   category and who has fewer open cases than their ``max_open_cases``;
   fewest open cases first, then agent id.
3. ``fallback``: any active agent (role ``agent``) under capacity, same order.
4. ``fallback``: an active supervisor, then an active manager, even over
   capacity (a case is never ownerless); among them: under capacity first,
   then skilled in the category, then fewest open cases, then id.
5. No active roster member at all: NoActiveAgentError (the activity is
   retried, so the case waits until a roster is loaded).
"""

from __future__ import annotations

from typing import Iterable, Literal, NamedTuple

from schemas.roster import Agent

RoutedBy = Literal["received_by", "routing", "fallback"]

LOAD_ROSTER_HINT = (
    "load a roster of agents into the application database "
    "(for example the demo roster roster/demo.json, with activities.roster_store.load_roster); "
    "the case is assigned automatically on the next retry"
)


class NoActiveAgentError(RuntimeError):
    """The roster has no active member: nobody can own the case yet."""


class Candidate(NamedTuple):
    agent: Agent
    open_cases: int


class Route(NamedTuple):
    agent: Agent
    routed_by: RoutedBy
    reason: str


def _has_capacity(c: Candidate) -> bool:
    return c.open_cases < c.agent.max_open_cases


def _load(c: Candidate) -> str:
    return f"{c.open_cases} open case{'s' if c.open_cases != 1 else ''} of {c.agent.max_open_cases}"


def _who(agent: Agent) -> str:
    return f"{agent.name} ({agent.id})"


def choose_owner(
    received_by: str | None,
    category: str,
    candidates: Iterable[Candidate | tuple[Agent, int]],
) -> Route:
    """Pick the owner of a new case in `category` among the roster `candidates`."""
    roster = [Candidate(*c) for c in candidates]
    active = [c for c in roster if c.agent.active]
    category = category.strip().lower()

    prefix = ""
    if received_by:
        received = next((c for c in roster if c.agent.id == received_by), None)
        if received is not None and received.agent.active:
            return Route(
                received.agent,
                "received_by",
                f"received the complaint: {_who(received.agent)} owns it ({_load(received)})",
            )
        why = "is not on the roster" if received is None else "is inactive"
        prefix = f"received by {received_by!r}, who {why}; "

    if not active:
        raise NoActiveAgentError(
            f"no active agent on the roster, so nobody can own this {category} case: {LOAD_ROSTER_HINT}"
        )

    by_load = lambda c: (c.open_cases, c.agent.id)  # noqa: E731
    agents = [c for c in active if c.agent.role == "agent"]

    skilled = sorted((c for c in agents if category in c.agent.skills and _has_capacity(c)), key=by_load)
    if skilled:
        best = skilled[0]
        return Route(
            best.agent,
            "routing",
            f"{prefix}skilled in {category} with the fewest open cases: {_who(best.agent)} ({_load(best)})",
        )

    available = sorted((c for c in agents if _has_capacity(c)), key=by_load)
    if available:
        best = available[0]
        return Route(
            best.agent,
            "fallback",
            f"{prefix}no agent skilled in {category} has capacity; "
            f"least loaded agent: {_who(best.agent)} ({_load(best)})",
        )

    for role in ("supervisor", "manager"):
        leads = sorted(
            (c for c in active if c.agent.role == role),
            key=lambda c: (not _has_capacity(c), category not in c.agent.skills, c.open_cases, c.agent.id),
        )
        if leads:
            best = leads[0]
            return Route(
                best.agent,
                "fallback",
                f"{prefix}no agent has capacity for a {category} case; "
                f"the {role} {_who(best.agent)} owns it ({_load(best)})",
            )

    # Active members exist but none is an agent, supervisor or manager: impossible with the
    # roster schema, kept so a future role can never leave a case ownerless silently.
    raise NoActiveAgentError(f"no active agent, supervisor or manager can own this case: {LOAD_ROSTER_HINT}")
