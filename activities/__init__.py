"""Activities: the engine's I/O (PostgreSQL), each idempotent so Temporal may retry it."""

from activities.case_activities import CaseActivities
from activities.db import apply_migrations, create_pool

__all__ = ["CaseActivities", "apply_migrations", "create_pool"]
