"""A typed client that opens cases by their own id and ends them after the test, and the worker it talks to.

`end_cases` terminates cases (and their problem doors) a test left open: on the dev server, which
the whole session shares, an open case's timers, or an idle door's, would otherwise keep firing for a
stopped worker. (Each test's time-skipping server is its own: conftest.clock_env.)
"""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Sequence

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from complaint_client import ComplaintClient
from schemas import Roster
from tests.conftest import running_worker


async def end_cases(client: ComplaintClient, complaint_ids: list[str], doors: Sequence[str] = ()) -> None:
    """Terminate the cases and their doors: their timers would otherwise fire for a stopped worker."""
    for workflow_id in [*(f"complaint-{complaint_id}" for complaint_id in complaint_ids), *doors]:
        try:
            await client.client.get_workflow_handle(workflow_id).terminate("test finished")
        except Exception:
            pass  # already closed


class Engine(ComplaintClient):
    """The typed client with helpers to open cases directly by their id, and to end them after the test.

    Each module passes its own: `owner` receives every case opened, `prefix` starts its complaint
    ids, `customer_prefix` and the complaint id make its customer's id, `policy` names its policy.
    """

    def __init__(self, *args: Any, owner: str, prefix: str, customer_prefix: str, policy: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner, self.prefix, self.customer_prefix, self.policy = owner, prefix, customer_prefix, policy
        self.started: list[str] = []
        self.doors: list[str] = []  # problem doors a test opened, ended with its cases

    async def open(self, *, accept: bool = True, **overrides: Any) -> tuple[str, str]:
        """A case started by its own id (not through the problem door); returns its id and its customer's actor."""
        complaint_id = f"{self.prefix}-{uuid.uuid4().hex[:10]}"
        customer_id = f"{self.customer_prefix}{complaint_id}"
        intake = {
            "complaint_id": complaint_id,
            "customer": {"customer_id": customer_id, "name": "Priya Natarajan"},
            "channel": "email",
            "category": "billing",
            "severity": "medium",
            "summary": "Charged twice for order A-1001",
            "received_by": self.owner,
            "policy": self.policy,
            "facts": {"order_id": "A-1001"},
            **overrides,
        }
        await self.client.start_workflow("ComplaintWorkflow", intake, id=f"complaint-{complaint_id}", task_queue=self.task_queue)
        self.started.append(complaint_id)
        assert await self.wait_for_owner(complaint_id) == self.owner
        if accept:
            await self.act(complaint_id, "accept_ownership", {"actor": self.owner})
        return complaint_id, f"customer:{customer_id}"


def with_converter(client: Client, converter: DataConverter) -> Client:
    """The same connection and namespace, another data converter (an encrypting one, say)."""
    return Client(**{**client.config(), "data_converter": converter})


def signing_as(client: Client, signer: Any) -> Client:
    """The same connection, signing each message's actor assertion with `signer` (a SigningKey or a Signer)."""
    from identity.interceptors import SigningInterceptor

    return Client(**{**client.config(), "interceptors": [SigningInterceptor(signer)]})


@asynccontextmanager
async def engine_on(
    env: WorkflowEnvironment,
    pool: Any,
    roster: Roster,
    *,
    read_your_writes: bool = False,
    converter: DataConverter | None = None,
    **options: Any,
) -> AsyncIterator[Engine]:
    """The roster loaded, a real worker on a fresh task queue, an Engine (options: Engine's) on it; its cases ended after.

    converter: the worker's and the Engine's data converter, instead of the environment's plain one.
    """
    from activities.roster_store import load_roster

    await load_roster(pool, roster)
    client = env.client if converter is None else with_converter(env.client, converter)
    async with running_worker(client, pool) as plain:
        client = Engine(plain.client, plain.task_queue, read_your_writes=read_your_writes, **options)
        yield client
        await end_cases(client, client.started, client.doors)
