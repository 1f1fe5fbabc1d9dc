"""The complaints worker: `python worker.py` (or `make worker`).

Reads its settings from the environment (config.py, docs/contract.md): with
TEMPORAL_ADDRESS and DATABASE_URL unset it starts (or joins) the embedded
Temporal dev server and PostgreSQL in ./data. Runs until SIGINT/SIGTERM, then
stops the worker (letting running activities finish), closes the database
pool and stops whatever it started, and exits 0; any failure exits 1. The
deadline policies (policies/policies.toml, or COMPLAINTS_POLICIES) are loaded
and checked before anything starts: a bad file exits 2 with one line naming
the bad entry. So are the client settings (encryption keys, TLS files, API
key; README "Customer data and security") and the delivery settings (SMTP_URL,
COMPLAINTS_METRICS_PORT, ...; delivery/settings.py): a bad one exits 2 naming the
variable. Beside the worker runs the delivery stall monitor, and /metrics when
COMPLAINTS_METRICS_PORT is set (delivery/monitor.py). With a real server and no
encryption keys the worker warns once that payloads are stored in plain text.
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any, Awaitable, Callable

import structlog
from temporalio.client import Client
from temporalio.worker import PollerBehaviorAutoscaling, Worker, WorkflowRunner

from activities import (
    CaseActivities,
    DoorActivities,
    OpeningActivities,
    PolicyActivities,
    PolicyBook,
    PolicyFileError,
    prepare_database,
    create_pool,
    load_policies,
)
from stack.process import exit_for_real
from activities.case_feed_activities import CaseFeedActivities
from activities.case_feed_starter import CaseFeedStarter
from activities.delivery_activities import DeliveryActivities
from activities.delivery_starter import DeliveryStarter
from activities.first_try import FirstTry
from activities.encryption_keys import EncryptionKeyActivities
from delivery.monitor import delivery_monitoring
from delivery.settings import DeliverySettings, delivery_settings
from activities.identity_activities import IdentityActivities
from activities.letters_activities import LetterActivities
from identity.interceptors import AssertionHeaders
from identity.modes import WorkerIdentity
from identity.setup import signing_key_for, worker_identity
from codec import KeyRing, for_workers, keyring_for
from config import DEFAULT_WORKFLOW_CACHE, Settings, SettingsError, load_settings
from logs import configure_logging
from tracing import configure_tracing
from stack import redact_url, running_stack
from stack.client import connect_client, connect_options
from stack.bytecode import compile_for_the_sandbox
from workflow_runner import GuardedWorkflowRunner
from workflows import worker_workflows

log = structlog.get_logger("worker")

# The default cache size; COMPLAINTS_WORKFLOW_CACHE sets the worker's (config.py says why it is this big).
MAX_CACHED_WORKFLOWS = DEFAULT_WORKFLOW_CACHE
# Running activities get this long to finish when the worker is asked to stop.
GRACEFUL_SHUTDOWN = timedelta(seconds=10)
# Exit status when the policies file cannot be used (nothing was started).
EXIT_BAD_POLICIES = 2
# Exit status when a setting (encryption keys, TLS, API key) cannot be used (nothing was started).
EXIT_BAD_SETTINGS = 2


def build_worker(  # type: ignore[no-untyped-def]
    client: Client,
    pool,
    task_queue: str,
    policies: PolicyBook | None = None,
    *,
    case_activities: CaseActivities | None = None,
    graceful_shutdown: timedelta = GRACEFUL_SHUTDOWN,
    max_cached_workflows: int = MAX_CACHED_WORKFLOWS,
    workflows: bool = True,
    activities: bool = True,
    workflow_runner: WorkflowRunner | None = None,
    identity: WorkerIdentity | None = None,
    delivery: DeliverySettings | None = None,
    first_try: FirstTry | None = None,
) -> Worker:
    """The worker: ComplaintWorkflow and the problem door, the case and door activities on `pool`,
    and open_case resolving policies from `policies`. Cases the door opens run on `task_queue`.

    policies None: load the file the settings name (COMPLAINTS_POLICIES, else the shipped one).
    case_activities: a replacement for CaseActivities(pool) (the crash drills use one).
    workflows, activities: which of the two it polls for (tests run them apart to stop one side).
    workflow_runner: a replacement for the guarded sandbox (tests show what the guard prevents).
    identity: how the cases check who is acting (identity/setup.py); None: the actor is taken as written.
    delivery: how notifications reach people (delivery/settings.py); None: read from the environment.
    first_try: sends each escalation at once from the worker that commits it (activities/first_try.py); None:
    one made here when the delivery settings want it (serve() passes its own, to let its tries finish on stop).
    """
    if policies is None:
        policies = load_policies(load_settings().policies_path)
    delivery = delivery or delivery_settings()
    if first_try is None and delivery.first_try:
        first_try = FirstTry(pool, delivery)
    deliveries = DeliveryStarter(client, task_queue, first_try)
    cases = case_activities or CaseActivities(pool, deliveries, CaseFeedStarter(client, task_queue))
    policy_activities = PolicyActivities(policies)
    delivery_activities = DeliveryActivities(pool, delivery, deliveries, policies, first_try.sender if first_try else None)
    workflow_classes = worker_workflows() if workflows else []
    compile_for_the_sandbox(workflow_classes)
    # A payload the worker cannot decode reaches the workflow as a marker to refuse, never a failed task.
    worker_client = Client(**{**client.config(), "data_converter": for_workers(client.data_converter)})
    # Local activities run where the workflows do (workflows/payload_keys.py, workflows/identity_check.py,
    # workflows/delivery.py).
    identity = identity or WorkerIdentity.trusting_callers()
    local = [
        *EncryptionKeyActivities(worker_client.data_converter).all(),
        *IdentityActivities(identity).all(),
        *delivery_activities.local(),
    ] if workflows else []  # fmt: skip
    return Worker(
        worker_client,
        task_queue=task_queue,
        workflows=workflow_classes,
        # The sandbox, guarded so that every case stays replayable (workflow_runner.py).
        workflow_runner=workflow_runner or GuardedWorkflowRunner(),
        activities=[
            *local,
            *cases.all(),
            *DoorActivities(client, pool, task_queue).all(),
            *OpeningActivities(cases, policy_activities).all(),
            *delivery_activities.remote(),
            *CaseFeedActivities(pool, delivery).all(),
            *LetterActivities(delivery).all(),
        ] if activities else local,
        no_remote_activities=not activities,
        # Each message's actor assertion reaches the case's handlers (identity/interceptors.py).
        interceptors=[AssertionHeaders()],
        **worker_settings(pool, max_cached_workflows, graceful_shutdown),
    )


def worker_settings(  # type: ignore[no-untyped-def]
    pool, max_cached_workflows: int = MAX_CACHED_WORKFLOWS, graceful_shutdown: timedelta = GRACEFUL_SHUTDOWN
) -> dict:
    """The worker's cache and concurrency (README, "Performance"); the lifecycle benchmark's bare worker uses them too.

    Each activity, regular or local (the event writes), holds at most one pooled
    connection, so more concurrent activities than connections would only wait
    in pool.acquire() while their start-to-close timeouts run: allow as many of
    each kind as the pool can serve. Workflow tasks stay at the SDK's 100.
    """
    max_activities = pool.get_max_size() if hasattr(pool, "get_max_size") else 10
    return {
        "max_concurrent_activities": max_activities,
        "max_concurrent_local_activities": max_activities,
        "max_cached_workflows": max_cached_workflows,
        "graceful_shutdown_timeout": graceful_shutdown,
        # Pollers added while a queue has a backlog: with five fixed ones, one took every new workflow's first
        # task, and a burst's deliveries waited for it (decision 0009).
        "workflow_task_poller_behavior": PollerBehaviorAutoscaling(),
        "activity_task_poller_behavior": PollerBehaviorAutoscaling(),
    }


async def serve(
    settings: Settings,
    stop: asyncio.Event,
    started: asyncio.Event | None = None,
    policies: PolicyBook | None = None,
    beside: Callable[[Client, Any], Awaitable[None]] | None = None,
) -> None:
    """Run the stack, the pool and the worker until `stop` is set; `started` is set once polling.

    The policies are loaded first (PolicyFileError before anything starts) unless given.
    beside: a service to run with the worker's client and pool (the HTTP API, api/serve.py); when it
    ends, the worker stops too.
    """
    if policies is None:
        policies = load_policies(settings.policies_path)
    # Bad keys or TLS settings stop the worker before anything starts (SettingsError).
    keyring = keyring_for(settings)
    require_a_choice_about_payloads(keyring, settings)
    connect_options(settings)
    identity = worker_identity(settings)
    delivery = delivery_settings()  # SMTP, webhooks, the monitor and the metrics port (delivery/settings.py)
    configure_tracing("complaints-worker")
    signing_key_for(settings, create=True)  # the embedded stack's development issuer, for its clients to sign with
    async with running_stack(settings) as stack:
        pool = await create_pool(stack.database_url)
        side_services = AsyncExitStack()
        try:
            await prepare_database(pool, settings.database_owner_url)
            client = await connect_client(stack.temporal_address, settings.namespace, settings=settings)
            log_payload_protection(keyring, settings)
            log_identity_mode(identity, settings)
            first_try = FirstTry(pool, delivery) if delivery.first_try else None
            worker = build_worker(
                client, pool, settings.task_queue, policies,
                max_cached_workflows=settings.workflow_cache, identity=identity, delivery=delivery, first_try=first_try,
            )  # fmt: skip
            # The stall monitor, and /metrics when COMPLAINTS_METRICS_PORT is set, until the worker stops.
            await side_services.enter_async_context(delivery_monitoring(pool, delivery))
            running = asyncio.create_task(worker.run(), name="worker")
            if started is not None:
                started.set()
            log.info(
                "worker started",
                task_queue=settings.task_queue,
                namespace=settings.namespace,
                temporal_address=stack.temporal_address,
                temporal_ui=stack.temporal_ui_url,
                database=redact_url(stack.database_url),
                max_concurrent_activities=worker.config().get("max_concurrent_activities"),
                max_cached_workflows=settings.workflow_cache,
                policies=policies.names,
                policies_file=policies.source,
            )
            stopping = asyncio.create_task(stop.wait())
            side = asyncio.create_task(beside(client, pool), name="beside") if beside is not None else None
            await asyncio.wait({running, stopping, *([side] if side else [])}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if side is not None and not side.done():
                side.cancel()
            if not running.done():
                log.info("worker stopping", task_queue=settings.task_queue)
                await worker.shutdown()
            if first_try is not None:
                await first_try.drain(GRACEFUL_SHUTDOWN)
            await running  # re-raises a worker failure
            log.info("worker stopped", task_queue=settings.task_queue)
        finally:
            await side_services.aclose()
            await pool.close()
            log.info("database pool closed")


def require_a_choice_about_payloads(keyring: KeyRing | None, settings: Settings) -> None:
    """A real server never gets customer data in plain text by accident: no keys must be asked for by name."""
    if keyring is None and settings.encryption_keys is None:
        raise SettingsError(
            "no payload encryption keys for the Temporal server at "
            f"{settings.client_address}: set COMPLAINTS_ENCRYPTION_KEYS (`python -m codec.keys` prints a new key), "
            "or COMPLAINTS_ENCRYPTION_KEYS=off to store customer data in Temporal in plain text"
        )


def log_identity_mode(identity: WorkerIdentity, settings: Settings) -> None:
    """Say how actors are checked: one warning line when they are taken as written."""
    if identity.mode == "signed":
        log.info("actors must be signed", issuers=sorted({issuer for issuer, _ in identity.trusted}))
        return
    log.warning(
        "actors are taken as written (COMPLAINTS_IDENTITY=trusted-callers): anyone who reaches the Temporal "
        "frontend may act as any agent, manager or customer; unsafe for production (docs/security.md, 'Signed actors')",
        temporal_address=settings.client_address,
    )


def log_payload_protection(keyring: KeyRing | None, settings: Settings) -> None:
    """Say how customer data is stored in Temporal: one warning line when it is plain text."""
    if keyring is not None:
        log.info("payloads encrypted", encryption=keyring.describe())
        return
    log.warning(
        "payloads are stored in plain text: customer names, emails, phone numbers and details are readable "
        "in Temporal's history; set COMPLAINTS_ENCRYPTION_KEYS (README, 'Customer data and security')",
        temporal_address=settings.client_address,
    )


async def _main(settings: Settings) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    started = asyncio.Event()
    serving = asyncio.create_task(serve(settings, stop, started), name="serve")
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        name = signal.Signals(signum).name
        if signals_seen > 1:  # a second Ctrl-C: don't wait for a slow shutdown
            log.warning("second signal; exiting now", signal=name)
            exit_for_real(130)
        log.info("shutdown requested", signal=name)
        stop.set()
        if not started.is_set():
            # Still starting: cancel the start-up, which stops whatever it had started.
            serving.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await serving
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
    return 0


def main() -> None:
    status = 1
    try:
        settings = load_settings()
        configure_logging(settings.log_format)
        status = asyncio.run(_main(settings))
    except KeyboardInterrupt:
        status = 130
    except PolicyFileError as error:
        # Nothing was started: say which entry of the file to fix, without a traceback.
        log.error("worker not started: the policies file is invalid", error=str(error))
        status = EXIT_BAD_POLICIES
    except SettingsError as error:
        # A bad setting (keys, TLS files, API key): nothing was started; one line names the variable.
        log.error("worker not started: a setting is invalid", error=str(error))
        status = EXIT_BAD_SETTINGS
    except Exception:
        log.exception("worker failed")
        status = 1
    finally:
        exit_for_real(status)


if __name__ == "__main__":
    main()
