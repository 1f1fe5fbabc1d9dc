"""The commands on one case: start (report a complaint), the actions, show."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from typing import Any

from cli.common import (
    EXIT_INFRA,
    EXIT_OK,
    PROG,
    CliError,
    Session,
    check_complaint_id,
    json_object,
    print_error,
    read_json,
    read_json_file,
    validated,
    with_database,
)
from cli.parser import action_fields, field_kind
from complaint_client import StartResult
from complaint_client.render import render_outcome, render_state, render_timeline
from schemas import ACTIONS, ComplaintIntake

# How long `start` waits for routing to name the owner.
OWNER_WAIT = timedelta(seconds=10)


def intake_from_args(args: argparse.Namespace) -> ComplaintIntake:
    if args.file and args.intake_json:
        raise CliError("give the intake with --file or --json, not both")
    data: dict[str, Any] = {}
    if args.file:
        data = dict(json_object(read_json_file(args.file), args.file))
    elif args.intake_json:
        data = dict(json_object(read_json(args.intake_json, "--json"), "--json"))
    for key in ("complaint_id", "channel", "category", "severity", "summary", "details", "received_at", "received_by", "policy"):
        value = getattr(args, key)
        if value is not None:
            data[key] = value
    customer_flags = {"customer_id": args.customer_id, "name": args.customer_name, "email": args.email, "phone": args.phone, "segment": args.segment}
    given = {key: value for key, value in customer_flags.items() if value is not None}
    if given:
        customer = data.get("customer")
        data["customer"] = {**(customer if isinstance(customer, dict) else {}), **given}
    if args.fact:
        facts = data.get("facts")
        data["facts"] = {**(facts if isinstance(facts, dict) else {}), **dict(args.fact)}
    return validated(ComplaintIntake, data, "complaint intake")


def action_from_args(args: argparse.Namespace) -> Any:
    model = ACTIONS[args.action_name]
    data: dict[str, Any] = {}
    if args.payload_file:
        data = dict(json_object(read_json_file(args.payload_file), args.payload_file))
    elif args.payload_json:
        data = dict(json_object(read_json(args.payload_json, "--json"), "--json"))
    if args.actor is not None:
        data["actor"] = args.actor
    if args.request_id is not None:
        data["request_id"] = args.request_id
    for field_name, field in action_fields(model).items():
        value = getattr(args, f"field__{field_name}")
        if value is None:
            continue
        if field_kind(field.annotation) == "dict":
            existing = data.get(field_name)
            value = {**(existing if isinstance(existing, dict) else {}), **dict(value)}
        data[field_name] = value
    return validated(model, data, args.action_name)


async def cmd_start(args: argparse.Namespace, session: Session) -> int:
    intake = intake_from_args(args)
    client = await session.connect()
    if args.direct:
        starting = client.start_case(intake, wait_for_owner=None)
        started = await session.call(starting, intake.complaint_id, needs_worker=False)
    else:
        hint = "; the contact may still be taken when a worker picks it up (sending the same intake again is safe)"
        started = await session.call(client.start(intake, wait_for_owner=None), hint=hint)
    if started.outcome == "existing":
        print(f"Case {intake.complaint_id} already exists; not started again")
        return EXIT_OK
    if started.outcome in ("joined", "reopened"):
        print(_joined_line(intake.complaint_id, started))
        return EXIT_OK
    try:
        owner_wait = min(OWNER_WAIT, timedelta(seconds=session.timeout))
        owner = await session.call(client.wait_for_owner(intake.complaint_id, owner_wait), intake.complaint_id)
    except CliError as error:
        print(f"Case {intake.complaint_id} started; owner: not known yet")
        _related_line(started.related_case)
        print_error(f"warning: {error.message}")
        return EXIT_OK
    shown = owner or f"not assigned yet (see `{PROG} show {intake.complaint_id}`)"
    print(f"Case {intake.complaint_id} started; owner: {shown}")
    _related_line(started.related_case)
    return EXIT_OK


def _joined_line(contact_id: str, started: StartResult) -> str:
    how = "joined open case" if started.outcome == "joined" else "reopened case"
    line = f"Contact {contact_id} {how} {started.complaint_id}; owner: {started.owner or 'not assigned yet'}"
    if started.outcome == "reopened":
        line += " (it had closed; the same owner takes it up again)"
    return line


def _related_line(related_case: str | None) -> None:
    if related_case is not None:
        print(f"  follows case {related_case} (closed, its feedback window over)")


async def cmd_action(args: argparse.Namespace, session: Session) -> int:
    check_complaint_id(args.complaint_id)
    action = action_from_args(args)
    name = args.action_name
    client = await session.connect()
    if args.signal:
        await session.call(client.send(args.complaint_id, name, action), args.complaint_id, needs_worker=False)
        print(
            f"Sent {name} to case {args.complaint_id} as a signal; if the case rejects it, "
            f"`{PROG} show {args.complaint_id}` shows why (command_rejected)"
        )
        return EXIT_OK
    hint = "; the action may still be applied when a worker picks it up"
    if action.request_id:
        hint += f" (resending with --request-id {action.request_id} is safe)"
    state = await session.call(client.act(args.complaint_id, name, action), args.complaint_id, hint=hint)
    print(render_state(state))
    if args.wait_written:
        await session.call(client.wait_written(args.complaint_id, state.event_count), args.complaint_id)
        print(f"Written to PostgreSQL: events 1..{state.event_count}")
    return EXIT_OK


async def cmd_show(args: argparse.Namespace, session: Session) -> int:
    from temporalio.client import WorkflowExecutionStatus

    check_complaint_id(args.complaint_id)
    client = await session.connect()
    cid = args.complaint_id
    state = await session.call(client.state(cid), cid)
    timeline = await session.call(client.recent_timeline(cid), cid)
    if timeline and timeline[0].seq > 1:
        # A long-lived case continued as new: its earlier events are in PostgreSQL (case_events).
        timeline = await _complete_timeline(session, cid, timeline)
    outcome = None
    description = await session.call(client.handle(cid).describe(), cid, needs_worker=False)
    if description.status == WorkflowExecutionStatus.COMPLETED:
        outcome = await session.call(client.outcome(cid), cid, needs_worker=False)
    if args.json:
        document = {
            "state": state.model_dump(mode="json"),
            "timeline": [event.model_dump(mode="json") for event in timeline],
            "outcome": outcome.model_dump(mode="json") if outcome else None,
        }
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(render_state(state))
    if outcome is not None:
        print(f"  outcome     {render_outcome(outcome)}")
    print()
    print(f"Timeline ({len(timeline)} events):")
    print(render_timeline(timeline))
    return EXIT_OK


async def _complete_timeline(session: Session, complaint_id: str, held: list[Any]) -> list[Any]:
    """The stored events before the ones the workflow holds (DATABASE_URL, else the embedded PostgreSQL)."""
    from complaint_client import IncompleteTimeline, join_timeline, stored_events

    async def read(pool):  # type: ignore[no-untyped-def]
        return await stored_events(pool, complaint_id, before_seq=held[0].seq)

    earlier = await with_database(session.settings, session.timeout, read)
    try:
        return join_timeline(complaint_id, earlier, held)
    except IncompleteTimeline as error:
        raise CliError(f"{error} (set DATABASE_URL to the engine's database)", EXIT_INFRA) from None
