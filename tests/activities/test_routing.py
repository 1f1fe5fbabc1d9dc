"""Unit tests of activities/routing.py: every rule, no database."""

from __future__ import annotations

import pytest

from activities.routing import Candidate, NoActiveAgentError, choose_owner
from schemas.roster import Agent
from tests.support.activity_io import member as agent


def roster(*entries: tuple[Agent, int]) -> list[Candidate]:
    return [Candidate(a, n) for a, n in entries]


# -- received_by --------------------------------------------------------------


def test_received_by_wins_even_without_skill_or_capacity():
    cands = roster((agent("a1", skills=["billing"]), 0), (agent("a2", skills=["delivery"], max_open=1), 5))
    route = choose_owner("a2", "billing", cands)
    assert (route.agent.id, route.routed_by) == ("a2", "received_by")
    assert "received" in route.reason and "a2" in route.reason


def test_received_by_can_be_a_supervisor():
    cands = roster((agent("a1"), 0), (agent("s1", role="supervisor", max_open=5), 9))
    assert choose_owner("s1", "billing", cands).agent.id == "s1"


def test_inactive_receiver_is_routed_and_reason_says_why():
    cands = roster((agent("a1"), 0), (agent("a2", active=False), 0))
    route = choose_owner("a2", "billing", cands)
    assert (route.agent.id, route.routed_by) == ("a1", "routing")
    assert "'a2'" in route.reason and "inactive" in route.reason


def test_unknown_receiver_is_routed_and_reason_says_why():
    route = choose_owner("ghost", "billing", roster((agent("a1"), 0)))
    assert (route.agent.id, route.routed_by) == ("a1", "routing")
    assert "not on the roster" in route.reason


# -- routing by skill ---------------------------------------------------------


def test_skill_beats_load():
    cands = roster((agent("a1", skills=["delivery"]), 0), (agent("a2", skills=["billing"]), 7))
    route = choose_owner(None, "billing", cands)
    assert (route.agent.id, route.routed_by) == ("a2", "routing")
    assert "billing" in route.reason


def test_fewest_open_cases_then_id():
    cands = roster(
        (agent("a3"), 2),
        (agent("a2"), 1),
        (agent("a1"), 1),
    )
    assert choose_owner(None, "billing", cands).agent.id == "a1"
    cands = roster((agent("a1"), 3), (agent("a2"), 1), (agent("a3"), 2))
    assert choose_owner(None, "billing", cands).agent.id == "a2"


def test_category_matching_ignores_case():
    route = choose_owner(None, " Billing ", roster((agent("a1", skills=["billing"]), 0)))
    assert route.routed_by == "routing"


def test_skilled_agent_at_capacity_is_skipped():
    cands = roster((agent("a1", max_open=2), 2), (agent("a2", max_open=2), 1))
    assert choose_owner(None, "billing", cands).agent.id == "a2"


def test_inactive_skilled_agent_is_skipped():
    cands = roster((agent("a1", active=False), 0), (agent("a2"), 4))
    assert choose_owner(None, "billing", cands).agent.id == "a2"


def test_supervisors_are_not_routed_to_while_an_agent_has_capacity():
    cands = roster((agent("s1", role="supervisor", max_open=5), 0), (agent("a9", skills=["delivery"]), 3))
    route = choose_owner(None, "billing", cands)
    assert (route.agent.id, route.routed_by) == ("a9", "fallback")


# -- fallbacks ----------------------------------------------------------------


def test_fallback_to_any_agent_under_capacity():
    cands = roster(
        (agent("a1", skills=["billing"], max_open=1), 1),
        (agent("a3", skills=["delivery"]), 2),
        (agent("a2", skills=["product"]), 2),
    )
    route = choose_owner(None, "billing", cands)
    assert (route.agent.id, route.routed_by) == ("a2", "fallback")
    assert "no agent skilled in billing" in route.reason


def test_fallback_to_supervisor_even_over_capacity():
    cands = roster(
        (agent("a1", max_open=1), 1),
        (agent("s2", role="supervisor", max_open=1), 4),
        (agent("m1", role="manager", max_open=5), 0),
    )
    route = choose_owner(None, "billing", cands)
    assert (route.agent.id, route.routed_by) == ("s2", "fallback")
    assert "supervisor" in route.reason


def test_supervisor_order_capacity_then_skill_then_load_then_id():
    sup = lambda id, skills=("billing",), max_open=5: agent(id, role="supervisor", skills=skills, max_open=max_open)  # noqa: E731
    full = roster((agent("a1", max_open=0), 0))
    # under capacity first
    assert choose_owner(None, "billing", full + roster((sup("s1", max_open=1), 1), (sup("s2"), 3))).agent.id == "s2"
    # then skilled in the category
    assert choose_owner(None, "billing", full + roster((sup("s1", skills=["delivery"]), 0), (sup("s2"), 2))).agent.id == "s2"
    # then fewest open, then id
    assert choose_owner(None, "billing", full + roster((sup("s1"), 2), (sup("s2"), 1))).agent.id == "s2"
    assert choose_owner(None, "billing", full + roster((sup("s2"), 1), (sup("s1"), 1))).agent.id == "s1"


def test_fallback_to_manager_when_no_agent_or_supervisor():
    cands = roster(
        (agent("a1", active=False), 0),
        (agent("s1", role="supervisor", active=False), 0),
        (agent("m2", role="manager", max_open=1), 3),
        (agent("m1", role="manager", max_open=1), 3),
    )
    route = choose_owner(None, "billing", cands)
    assert (route.agent.id, route.routed_by) == ("m1", "fallback")
    assert "manager" in route.reason


def test_no_active_member_raises_with_how_to_load_a_roster():
    cands = roster((agent("a1", active=False), 0), (agent("s1", role="supervisor", active=False), 0))
    with pytest.raises(NoActiveAgentError, match="roster/demo.json"):
        choose_owner(None, "billing", cands)
    with pytest.raises(NoActiveAgentError, match="no active agent"):
        choose_owner("a1", "billing", [])


def test_accepts_plain_tuples():
    assert choose_owner(None, "billing", [(agent("a1"), 0)]).agent.id == "a1"
