"""The workflows: the case's state machine and the small ones beside it (doors, deliveries, case feeds)."""

from __future__ import annotations


def worker_workflows() -> list[type]:
    """Every workflow a worker runs: the worker registers them and every replay (workflow_runner.replayer) knows
    them, so a history of any of them replays with exactly the code a worker runs."""
    from workflows.case_feed import CaseFeedWorkflow
    from workflows.complaint import ComplaintWorkflow
    from workflows.delivery import DeliveryWorkflow
    from workflows.problem_door import ProblemDoorWorkflow

    return [ComplaintWorkflow, ProblemDoorWorkflow, DeliveryWorkflow, CaseFeedWorkflow]
