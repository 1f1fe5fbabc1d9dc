"""Activities: the engine's I/O (PostgreSQL, the policies file), each idempotent so Temporal may retry it."""

from activities.case_activities import CaseActivities
from activities.db import apply_migrations, create_pool, prepare_database
from activities.door_activities import DoorActivities
from activities.opening_activities import OpeningActivities
from activities.policies import PolicyBook, UnknownPolicy, load_policies
from activities.policy_file import PolicyFileError
from activities.policy_activities import PolicyActivities

__all__ = [
    "CaseActivities",
    "DoorActivities",
    "OpeningActivities",
    "PolicyActivities",
    "PolicyBook",
    "PolicyFileError",
    "UnknownPolicy",
    "apply_migrations",
    "prepare_database",
    "create_pool",
    "load_policies",
]
