"""`notifications list` and `notifications ack`: the escalation outbox in the application database."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

from cli.common import EXIT_OK, PROG, CliError, check_complaint_id, format_table, with_database
from config import Settings


def _when_exact(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _clip(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def cmd_notifications_list(args: argparse.Namespace, settings: Settings, timeout: float) -> int:
    from activities.notifications_store import attach_attempts, list_notifications

    if args.limit < 1:
        raise CliError(f"--limit must be at least 1 (got {args.limit})")
    if args.case is not None:
        check_complaint_id(args.case)

    async def fetch(pool):  # type: ignore[no-untyped-def]
        found = await list_notifications(
            pool, recipient=args.recipient, complaint_id=args.case, pending_only=not args.all, status=args.status,
            limit=args.limit,
        )
        if args.attempts or args.json:
            await attach_attempts(pool, found)
        return found

    found = await with_database(settings, timeout, fetch)
    if args.json:
        print(json.dumps([n.model_dump(mode="json") for n in found], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not found:
        whom = f" for {args.recipient}" if args.recipient else ""
        which = f" of case {args.case}" if args.case else ""
        status = f" {args.status}" if args.status else ""
        print(f"No{'' if args.all else ' unacknowledged'}{status} notifications{whom}{which}.")
        return EXIT_OK
    headers = ["ID", "CREATED", "RECIPIENT", "CASE", "CLOCK", "LEVEL", "REASON", "DUE", "STATUS", "TRIES"]
    if args.all:
        headers += ["ACKNOWLEDGED", "BY"]
    rows = []
    for n in found:
        row = [
            str(n.id),
            _when_exact(n.created_at),
            f"{n.recipient} ({n.recipient_role})",
            n.complaint_id,
            n.clock if n.occurrence == 1 else f"{n.clock} #{n.occurrence}",
            str(n.level),
            _clip(n.reason),
            _when_exact(n.due_at),
            n.status,
            str(n.attempts),
        ]
        if args.all:
            row += [_when_exact(n.acknowledged_at), n.acknowledged_by or "-"]
        rows.append(row)
        for attempt in (n.attempt_log or []) if args.attempts else []:
            outcome = attempt.outcome or "no outcome (worker lost)"
            code = f" {attempt.response_code}" if attempt.response_code is not None else ""
            error = f": {_clip(attempt.error, 50)}" if attempt.error else ""
            rows.append([
                "", f"  {_when_exact(attempt.started_at)}", f"  {_try_name(attempt.attempt)} {attempt.channel}", "", "", "",
                _clip(f"{outcome}{code}{error}"), "", "", "",
            ] + (["", ""] if args.all else []))  # fmt: skip
    print(format_table(headers, rows))
    return EXIT_OK


def _try_name(attempt: int) -> str:
    """Attempt 0 is the first try the committing worker made at once (activities/first_try.py)."""
    return "at commit" if attempt == 0 else f"try {attempt}"


async def cmd_notifications_ack(args: argparse.Namespace, settings: Settings, timeout: float) -> int:
    from activities.notifications_store import acknowledge, get_notifications

    wanted = sorted(set(args.ids))

    async def ack(pool):  # type: ignore[no-untyped-def]
        async with pool.acquire() as conn, conn.transaction():
            known = await get_notifications(conn, wanted)
            missing = sorted(set(wanted) - {n.id for n in known})
            if missing:
                shown = ", ".join(str(i) for i in missing)
                raise CliError(
                    f"no notification {shown} (nothing was marked; see `{PROG} notifications list --all`)"
                )
            return known, await acknowledge(conn, wanted, acknowledged_by=args.by)

    known, marked = await with_database(settings, timeout, ack)
    already = [f"{n.id} (by {n.acknowledged_by})" for n in known if n.acknowledged_at is not None]
    message = f"Acknowledged {marked} notification{'s' if marked != 1 else ''} by {args.by}"
    if already:
        message += f"; already acknowledged: {', '.join(already)}"
    print(message)
    return EXIT_OK
