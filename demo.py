"""The demo: `make demo` (or `python demo.py`).

Boots the embedded defaults (Temporal dev server and PostgreSQL in ./data, or
the servers named by TEMPORAL_ADDRESS / DATABASE_URL), runs a worker, loads
the demo roster, works six realistic complaints end to end (one escalating live on the
demo policy, its escalations delivered by email to an SMTP sink and by signed webhook to
a receiver, both on loopback; one transferred with a handoff, one joined by a second contact), prints
each timeline, works one more through the HTTP API (printing each call), prints a
summary, and exits 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from activities import apply_migrations, create_pool
from activities.notifications_store import list_notifications
from activities.roster_store import load_roster
from complaint_client import ComplaintClient
from complaint_client.render import render_state, render_timeline
from codec import keyring_for
from config import SettingsError, load_settings
from demo_cases import SCENARIOS
from demo_cases.deliveries import Witness, print_deliveries, print_letters, witnessed
from logs import configure_logging
from schemas import Roster
from stack import running_stack
from stack.client import connect_client
from stack.process import exit_for_real
from worker import build_worker, log_payload_protection

DEMO_ROSTER = Path(__file__).parent / "roster" / "demo.json"


async def run_demo() -> int:
    settings = load_settings()
    print("Starting the complaint engine (embedded defaults unless TEMPORAL_ADDRESS / DATABASE_URL are set)...")
    async with running_stack(settings) as stack:
        pool = await create_pool(stack.database_url)
        try:
            await apply_migrations(pool)
            async with witnessed() as witness:
                roster = witness.roster(Roster.model_validate(json.loads(DEMO_ROSTER.read_text())))
                agents = await load_roster(pool, roster)
                await witness.know_secrets(pool, roster)
                print(f"Temporal: {stack.temporal_address}" + (f"   UI: {stack.temporal_ui_url}" if stack.temporal_ui_url else ""))
                print(f"Roster:   {agents} agents loaded from {DEMO_ROSTER.relative_to(Path.cwd()) if DEMO_ROSTER.is_relative_to(Path.cwd()) else DEMO_ROSTER}")
                print(f"Delivery: email to an SMTP sink on {witness.sink.url}, supervisors' and managers' webhooks to "
                      f"{witness.receiver.base_url} (both in this process)")
                client = await connect_client(stack.temporal_address, settings.namespace, settings=settings)
                log_payload_protection(keyring_for(settings), settings)  # a warning only when payloads are plain text
                delivery = witness.settings(public_url="http://127.0.0.1:8000")
                async with build_worker(client, pool, settings.task_queue, delivery=delivery):
                    return await _work_the_cases(ComplaintClient(client, settings.task_queue), pool, settings, witness)
        finally:
            await pool.close()


async def _work_the_cases(engine: ComplaintClient, pool, settings, witness: Witness) -> int:  # type: ignore[no-untyped-def]
    # Ids are new on every run: the engine never reopens a closed complaint_id as a new case.
    run = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    rows = []
    for number, scenario in enumerate(SCENARIOS, start=1):
        complaint_id = f"DEMO-{run}-{number}"
        print(f"\n=== Case {number}: {scenario.title} ===")
        print(f"  {scenario.story}")
        started = time.monotonic()
        outcome = await scenario.run(engine, complaint_id)
        await engine.wait_written(complaint_id)  # the outbox printed below is read from PostgreSQL
        elapsed = time.monotonic() - started
        state = await engine.state(complaint_id)
        print()
        print(render_state(state))
        print("\n  Timeline:")
        print(render_timeline(await engine.timeline(complaint_id)))
        if outcome.escalations:
            await print_deliveries(witness, pool, complaint_id)
        if state.letters:
            await print_letters(witness, engine, complaint_id)
        kept = f"{outcome.promises_kept}/{outcome.promises_total}"
        if outcome.promises_kept_on_time < outcome.promises_kept:
            kept += f" ({outcome.promises_kept_on_time} on time)"
        rows.append((complaint_id, state.category, outcome.owner, outcome.outcome, kept, outcome.escalations, state.event_count, f"{elapsed:.1f}s"))

    await _one_case_over_http(engine, pool, settings)
    await _print_notifications(pool, [row[0] for row in rows])
    print("\n=== Summary ===")
    header = ("case", "category", "owner", "outcome", "promises kept", "escalations", "events", "took")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
    print(f"\n{len(rows)} cases closed with follow-through. They are kept in ./data: to look at one, run")
    print(f"`make worker` in another terminal, then `.venv/bin/python starter.py show {rows[0][0]}`.")
    return 0


async def _one_case_over_http(engine: ComplaintClient, pool, settings) -> None:  # type: ignore[no-untyped-def]
    """The HTTP API (make api) in this process on a free port, and one case worked through it."""
    from api.app import create_app
    from api.auth import bearer_token, key_authenticator
    from api.serve import served
    from demo_cases.customers import customer_id
    from demo_cases.over_http import worked_over_http
    from identity.setup import signing_key_for

    key = signing_key_for(settings, create=True)
    assert key is not None
    complaint_id = f"DEMO-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-api"
    customer = f"customer:{customer_id('CU-7781', complaint_id)}"
    tokens = {actor: bearer_token(key, actor, lifetime=timedelta(minutes=10)) for actor in ("c.nguyen", customer)}
    async with served(create_app(engine, pool, key_authenticator(key))) as base_url:
        print(f"\n=== One case over HTTP: the API on {base_url} (make api serves it on 8000) ===")
        state = await worked_over_http(base_url, tokens, complaint_id)
        print(f"  {complaint_id}: {state['status']}, outcome {state['outcome']}, with the actor of each call from its token")


async def _print_notifications(pool, complaint_ids: list[str]) -> None:  # type: ignore[no-untyped-def]
    notices = [
        notice
        for complaint_id in complaint_ids
        for notice in await list_notifications(pool, complaint_id=complaint_id, pending_only=False)
    ]
    print(f"\n=== Notifications outbox: {len(notices)} escalation(s), one row each ===")
    for notice in sorted(notices, key=lambda n: n.created_at):
        late_ms = (notice.created_at - notice.due_at).total_seconds() * 1000
        print(
            f"  {notice.complaint_id}  {notice.clock} level {notice.level} -> {notice.recipient} ({notice.recipient_role}), "
            f"due {notice.due_at.strftime('%H:%M:%S.%f')[:-3]}, queued {late_ms:.0f} ms later"
        )
    print("  (`starter.py notifications list --attempts` shows each one's delivery; `notifications ack ID` records who acted)")


def main() -> None:
    try:
        settings = load_settings()
    except SettingsError as error:  # a bad variable or temporal CLI profile: one line, exit 2
        print(f"demo: {error}", file=sys.stderr)
        exit_for_real(2)
    # The demo prints the cases; logs go to stderr at warning level so the story stays readable.
    configure_logging(settings.log_format, level=logging.WARNING)
    status = 1
    try:
        status = asyncio.run(run_demo())
    except KeyboardInterrupt:
        status = 130
    except Exception as error:  # one clear line, never a traceback
        print(f"demo failed: {type(error).__name__}: {error}", file=sys.stderr)
    finally:
        exit_for_real(status)


if __name__ == "__main__":
    main()
