"""`list`: the cases matching filters, read from Temporal's visibility store."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

from cli.common import EXIT_OK, CliError, Session, format_table


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


async def cmd_list(args: argparse.Namespace, session: Session) -> int:
    from complaint_client.fleet import list_query

    filters = {
        "owner": args.owner,
        "status": args.status,
        "severity": args.severity,
        "category": args.category,
        "customer_id": args.customer,
        "min_escalation_level": args.min_escalation,
    }
    if args.limit < 1:
        raise CliError(f"--limit must be at least 1 (got {args.limit})")
    try:
        list_query(**filters)  # checks the filter values before connecting
    except ValueError as error:
        raise CliError(str(error)) from None
    client = await session.connect()
    cases = await session.call(client.list(**filters, limit=args.limit), needs_worker=False)
    if args.json:
        rows = [
            {
                "complaint_id": case.complaint_id,
                "workflow_id": case.workflow_id,
                "status": case.status,
                "owner": case.owner,
                "severity": case.severity,
                "category": case.category,
                "customer_id": case.customer_id,
                "escalation_level": case.escalation_level,
                "next_deadline": case.next_deadline.isoformat() if case.next_deadline else None,
                "execution_status": case.execution_status,
            }
            for case in cases
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not cases:
        print("No cases match. (The list is eventually consistent: a case started or changed a moment ago may not show yet.)")
        return EXIT_OK
    headers = ("COMPLAINT", "STATUS", "OWNER", "SEVERITY", "CATEGORY", "ESC", "NEXT DEADLINE")
    rows = [
        (
            case.complaint_id,
            case.status or "-",
            case.owner or "-",
            case.severity or "-",
            case.category or "-",
            str(case.escalation_level or 0),
            _when(case.next_deadline),
        )
        for case in cases
    ]
    print(format_table(headers, rows))
    return EXIT_OK
