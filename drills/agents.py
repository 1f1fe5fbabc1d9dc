"""The support floor: simulated agents working every case through the typed client, retrying through outages."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, TypeVar

from complaint_client import CommandRejected, ComplaintClient
from schemas import CaseOutcome
from tools.harness.progress import say
from workflows.start_input import workflow_id_for

POLICY = "demo"
CATEGORIES = ("billing", "payments", "delivery", "product", "service")
CHANNELS = ("email", "phone", "chat", "web")
# One attempt of one client call; a call that takes longer is abandoned and retried (same request id).
ATTEMPT_TIMEOUT = 90.0
# A case's milestones, for the progress bar: opened, accepted, promised, kept, closed, completed.
STAGES = 6

T = TypeVar("T")


class DrillError(RuntimeError):
    """The drill itself could not go on (a case could not be driven, a check could not be made)."""


@dataclass
class CaseRun:
    index: int
    complaint_id: str
    customer_id: str
    via: str  # door or direct
    owner: str | None = None
    opened_as: str | None = None  # the door's or start_case's outcome
    promise_id: str | None = None
    rejected_first_resolution: bool = False
    asked_for_info: bool = False
    feedback: str | None = None  # given N, refused (window over), or None
    closed_status: str | None = None
    outcome: CaseOutcome | None = None
    error: str | None = None
    retries: int = 0  # client calls retried (the worker or the server was away)
    door_workflow_id: str | None = None  # the problem door it was opened through
    stuck: str | None = None  # the workflow task keeps failing: why (from the history)
    done: bool = False
    stage: int = 0  # milestones passed, of STAGES; all of them once done

    def reached(self, stage: int) -> None:
        self.stage = max(self.stage, stage)


class Agents:
    """The support floor: one task per case, acting through the typed client, retrying through outages."""

    def __init__(self, engine: ComplaintClient, deadline: float, promise_range: tuple[float, float], seed: int) -> None:
        self.engine = engine
        self.deadline = deadline  # loop time
        self.promise_range = promise_range
        self.seed = seed
        self.retry_kinds: Counter[str] = Counter()

    async def persist(self, run: CaseRun, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """call() until it answers: transient failures (server or worker away) are retried with backoff;
        a CommandRejected is the engine's answer and is raised. Every action carries its request_id,
        so a retried action is applied at most once."""
        loop = asyncio.get_running_loop()
        delay = 0.25
        while True:
            remaining = self.deadline - loop.time()
            try:
                return await asyncio.wait_for(call(), timeout=max(1.0, min(ATTEMPT_TIMEOUT, remaining)))
            except CommandRejected:
                raise
            except Exception as error:  # RPCError, update/query timeouts, a worker that went away mid-call
                run.retries += 1
                self.retry_kinds[type(error).__name__] += 1
                if loop.time() >= self.deadline:
                    raise DrillError(f"{run.complaint_id}: {what} still failing at the deadline: {type(error).__name__}: {error}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 4.0)

    async def act(self, run: CaseRun, step: str, action: str, payload: dict[str, Any]):  # type: ignore[no-untyped-def]
        payload = {**payload, "request_id": f"{run.complaint_id}:{step}"}
        return await self.persist(run, f"{action} ({step})", lambda: self.engine.act(run.complaint_id, action, payload))

    async def work(self, run: CaseRun) -> None:
        try:
            await self._work(run)
        except asyncio.CancelledError:
            if not run.stuck:
                raise
            run.error = f"stuck: {run.stuck}"  # the watchdog gave up on it
        except Exception as error:
            run.error = f"{type(error).__name__}: {error}"
            say(f"!! {run.complaint_id}: {run.error}")
        finally:
            run.done = True
            run.stage = STAGES

    async def _work(self, run: CaseRun) -> None:
        rng = random.Random(f"{self.seed}:{run.index}")
        customer = f"customer:{run.customer_id}"
        cid = run.complaint_id
        await asyncio.sleep(run.index * 0.05)  # a burst, not one instant
        intake = {
            "complaint_id": cid,
            "customer": {"customer_id": run.customer_id, "name": f"Drill customer {run.index}"},
            "channel": rng.choice(CHANNELS),
            "category": rng.choice(CATEGORIES),
            "severity": rng.choice(("low", "medium", "high", "critical")),
            "summary": f"Crash drill complaint {run.index}: the order arrived damaged",
            "details": "Opened by drills/crash.py while the worker is killed and restarted.",
            "policy": POLICY,
            "facts": {"order_id": f"ORD-{run.index:05d}"},
        }
        if run.via == "door":
            started = await self.persist(run, "start (door)", lambda: self.engine.start(intake, wait_for_owner=None))
        else:
            started = await self.persist(run, "start_case", lambda: self.engine.start_case(intake, wait_for_owner=None))
        run.opened_as = started.outcome
        run.reached(1)
        run.door_workflow_id = started.door_workflow_id
        if started.complaint_id != cid:
            raise DrillError(f"{cid}: the door routed the contact to {started.complaint_id} ({started.outcome})")
        run.owner = await self._owner(run)
        owner = run.owner

        await self._think(rng)
        await self.act(run, "accept", "accept_ownership", {"actor": owner})
        run.reached(2)
        await self._think(rng)
        await self.act(run, "contact-1", "contact_customer",
                       {"actor": owner, "channel": intake["channel"], "summary": "Apologised; looking into it now"})
        if rng.random() < 0.4:
            run.asked_for_info = True
            await self._think(rng)
            await self.act(run, "ask", "request_info",
                           {"actor": owner, "fields": ["photo_reference"], "question": "Could you send a photo of the damage?"})
            await self._think(rng)
            await self.act(run, "answer", "provide_info",
                           {"actor": customer, "facts": {"photo_reference": f"IMG-{run.index:05d}"}, "channel": "email"})

        # A promise that slips: it escalates (owner warned, then the supervisor) before it is kept.
        state = None
        for attempt in range(1, 4):
            due = datetime.now(timezone.utc) + timedelta(seconds=rng.uniform(*self.promise_range))
            try:
                state = await self.act(run, f"promise-{attempt}", "make_promise",
                                       {"actor": owner, "description": "Courier collects the damaged parcel",
                                        "due_at": due.isoformat()})
                break
            except CommandRejected as refused:
                # Delayed past its due time by an outage: promise again, later.
                say(f"   {cid}: make_promise refused ({refused.message}); promising again")
        if state is None:
            raise DrillError(f"{cid}: make_promise refused three times")
        run.promise_id = state.promises[-1].promise_id
        run.reached(3)
        notes = 0
        while True:
            await asyncio.sleep(rng.uniform(3, 9))
            state = await self.persist(run, "state", lambda: self.engine.state(cid))
            promise = next(p for p in state.promises if p.promise_id == run.promise_id)
            if promise.status == "overdue":
                break
            notes += 1
            if rng.random() < 0.5:
                await self.act(run, f"note-{notes}", "add_note", {"actor": owner, "text": f"Chased the courier ({notes})"})
            else:
                await self.act(run, f"contact-{notes + 1}", "contact_customer",
                               {"actor": owner, "channel": "email", "summary": f"Update {notes}: the courier is booked"})
        await self.act(run, "keep", "keep_promise",
                       {"actor": owner, "promise_id": run.promise_id, "evidence": "Courier collected it, late (ref CR-1)"})
        run.reached(4)
        await self._think(rng)
        resolution = {"actor": owner, "resolution": "Replacement sent; the damaged parcel collected",
                      "root_cause": "Parcel packed without corner protection"}
        await self.act(run, "propose-1", "propose_resolution", resolution)
        if rng.random() < 0.25:
            run.rejected_first_resolution = True
            await self._think(rng)
            await self.act(run, "reject", "confirm_resolution",
                           {"actor": customer, "satisfied": False, "comment": "The replacement is damaged too"})
            await self._think(rng)
            await self.act(run, "propose-2", "propose_resolution",
                           {**resolution, "resolution": "A second replacement, double boxed, and a refund of postage"})
        await self._think(rng)
        state = await self.act(run, "confirm", "confirm_resolution",
                               {"actor": customer, "satisfied": True, "comment": "Arrived intact, thanks"})
        run.closed_status = state.status
        run.reached(5)
        if rng.random() < 0.5:
            score = rng.randint(1, 5)  # 1 or 2 notifies the supervisor through the outbox
            try:
                await self.act(run, "feedback", "record_feedback", {"actor": customer, "score": score})
                run.feedback = f"given {score}"
            except CommandRejected:
                run.feedback = "refused (window over)"
        # The workflow completes when the feedback window ends.
        handle = self.engine.client.get_workflow_handle(workflow_id_for(cid), result_type=CaseOutcome)
        run.outcome = await self.persist(run, "result", lambda: handle.result())

    async def _owner(self, run: CaseRun) -> str:
        while True:
            state = await self.persist(run, "state", lambda: self.engine.state(run.complaint_id))
            if state.owner:
                return state.owner
            await asyncio.sleep(0.5)

    @staticmethod
    async def _think(rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(0.2, 1.5))

