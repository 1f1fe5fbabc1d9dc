"""What the rules need to know before an action applies: the agents, systems and workload it names, from the roster.

Each read is an activity, so its answer is in the history and a replay takes the same decision.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.actions import Action
    from schemas.roster import AgentRef, AgentWorkload, SystemRef
    from workflows.activity_options import DB_RETRY, DB_TIMEOUT
    from workflows.case import Case


async def look_up_for(case: Case, name: str, action: Action) -> None:
    """Teach the case the roster records that its rules for this action read."""
    for agent_id in case.agents_to_look_up(name, action):
        agent = await workflow.execute_activity(
            "lookup_agent", agent_id, result_type=AgentRef | None, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY
        )
        if agent is not None:
            case.learn_agent(agent)
    for system in case.systems_to_look_up(name, action):
        case.learn_system(
            system,
            await workflow.execute_activity(
                "lookup_system", system, result_type=SystemRef | None, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY
            ),
        )
    target = case.workload_to_look_up(name, action)
    if target is not None:
        case.learn_workload(
            await workflow.execute_activity(
                "agent_workload", target, result_type=AgentWorkload, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY
            )
        )
