"""What a run leaves behind, removed: its workflows (terminated, then deleted) and its rows in PostgreSQL."""

from __future__ import annotations

import asyncio
import time

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client

from bench.bare import BARE_TABLE
from bench.common import bounded
from bench.escalations.context import Run
from tools.harness.progress import Progress, say


async def terminate(client: Client, workflow_id: str) -> None:
    """Stop one of the benchmark's workflows, so that it leaves no timers firing on the server."""
    try:
        await client.get_workflow_handle(workflow_id).terminate(reason="escalation benchmark finished")
    except Exception:
        pass  # already closed: nothing to stop


async def cleanup(ctx: Run, progress: Progress) -> None:
    progress.set("cleanup: deleting the benchmark's workflows", len(ctx.to_delete))

    async def delete(wid: str) -> None:
        try:
            await ctx.client.workflow_service.delete_workflow_execution(
                DeleteWorkflowExecutionRequest(namespace=ctx.namespace, workflow_execution=WorkflowExecution(workflow_id=wid)))
        except Exception:
            pass  # already gone

    await bounded(ctx.to_delete, delete, ctx.concurrency, progress)
    # Deletion is asynchronous on the server: wait for it here, so that it does not load the
    # server during whatever comes next (or, for the embedded server, at its next start).
    query = f"TaskQueue = '{ctx.engine_queue}' OR TaskQueue = '{ctx.bare_queue}'"
    progress.set("cleanup: waiting for the server to finish deleting")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            left = (await ctx.client.count_workflows(query)).count
        except Exception as error:
            say(f"cleanup: cannot count the remaining workflows ({type(error).__name__}: {error})")
            break
        progress.extra = f": {left} left"
        if left == 0:
            break
        await asyncio.sleep(1)
    like = ctx.case_prefix + "%"
    async with ctx.pool.acquire() as conn, conn.transaction():
        for table in ("notifications", "case_events", "promises", "cases"):
            await conn.execute(f"DELETE FROM {table} WHERE complaint_id LIKE $1", like)
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", BARE_TABLE)
        if exists:
            await conn.execute(f"DELETE FROM {BARE_TABLE} WHERE run_id = $1", ctx.run_id)
            if not await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {BARE_TABLE})"):
                await conn.execute(f"DROP TABLE {BARE_TABLE}")
    say("cleanup: workflows deleted, rows removed")
