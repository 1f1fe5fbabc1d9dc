"""Where cases live: every setting comes from the environment (see CONTRACT.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TASK_QUEUE = "complaints"
DEFAULT_NAMESPACE = "default"
# The embedded dev server listens here when TEMPORAL_ADDRESS is not set.
EMBEDDED_TEMPORAL_PORT = 7233
EMBEDDED_TEMPORAL_UI_PORT = 8233
# The deadline policies shipped beside this module (installed with it as package data).
DEFAULT_POLICIES_PATH = Path(__file__).resolve().parent / "policies" / "policies.toml"


# Workflows a worker keeps in memory. Escalations of many cases can fall due
# together; a case not in the cache replays its history before it can escalate
# (bench/escalations.py: with 1,000 promises due at once, a cache of 500 made
# the worker spend about 3x the CPU). About 0.25 MiB per cached case.
DEFAULT_WORKFLOW_CACHE = 2_000


@dataclass(frozen=True)
class Settings:
    temporal_address: str | None
    namespace: str
    task_queue: str
    database_url: str | None
    data_dir: Path
    log_format: str
    # The deadline policies file (activities/policies.py); COMPLAINTS_POLICIES overrides it.
    policies_path: Path = DEFAULT_POLICIES_PATH
    # Workflows the worker keeps cached (COMPLAINTS_WORKFLOW_CACHE).
    workflow_cache: int = DEFAULT_WORKFLOW_CACHE

    @property
    def embedded_temporal(self) -> bool:
        return self.temporal_address is None

    @property
    def embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def client_address(self) -> str:
        """The address clients use: the real server's, or the embedded dev server's."""
        return self.temporal_address or f"127.0.0.1:{EMBEDDED_TEMPORAL_PORT}"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    return Settings(
        temporal_address=env.get("TEMPORAL_ADDRESS") or None,
        namespace=env.get("TEMPORAL_NAMESPACE") or DEFAULT_NAMESPACE,
        task_queue=env.get("COMPLAINTS_TASK_QUEUE") or DEFAULT_TASK_QUEUE,
        database_url=env.get("DATABASE_URL") or None,
        data_dir=Path(env.get("COMPLAINTS_DATA_DIR") or "data").resolve(),
        # "console" for people, "json" for log shippers; auto picks by whether stderr is a terminal.
        log_format=env.get("LOG_FORMAT") or "auto",
        policies_path=Path(env["COMPLAINTS_POLICIES"]).resolve() if env.get("COMPLAINTS_POLICIES") else DEFAULT_POLICIES_PATH,
        workflow_cache=_positive_int(env, "COMPLAINTS_WORKFLOW_CACHE", DEFAULT_WORKFLOW_CACHE),
    )


def _positive_int(env, name: str, default: int) -> int:  # type: ignore[no-untyped-def]
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1 (got {raw!r})")
    return value
