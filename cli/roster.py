"""`roster load` and `roster list`: the agents in the application database."""

from __future__ import annotations

import argparse
import json

from cli.common import EXIT_OK, PROG, CliError, format_table, read_json_file, validated, with_database
from config import Settings
from schemas import Roster


async def cmd_roster_load(args: argparse.Namespace, settings: Settings, timeout: float) -> int:
    from activities.roster_store import RosterError, load_roster

    roster = validated(Roster, read_json_file(args.file), "roster")

    async def load(pool) -> int:  # type: ignore[no-untyped-def]
        try:
            return await load_roster(pool, roster, changed_by=args.by)
        except RosterError as error:
            raise CliError(str(error)) from None

    count = await with_database(settings, timeout, load)
    print(f"Roster loaded: {count} agent{'s' if count != 1 else ''} inserted or updated")
    return EXIT_OK


async def cmd_roster_list(args: argparse.Namespace, settings: Settings, timeout: float) -> int:
    from activities.roster_store import list_agents

    agents = await with_database(settings, timeout, list_agents)
    if args.json:
        print(json.dumps([agent.model_dump(mode="json") for agent in agents], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not agents:
        print(f"The roster is empty: load one with `{PROG} roster load FILE`")
        return EXIT_OK
    headers = ("ID", "NAME", "ROLE", "TEAM", "SUPERVISOR", "SKILLS", "AUTHORITY", "MAX OPEN", "ACTIVE")
    rows = [
        (
            agent.id,
            agent.name,
            agent.role,
            agent.team,
            agent.supervisor_id or "-",
            ",".join(agent.skills) or "-",
            str(agent.authority_limit),
            str(agent.max_open_cases),
            "yes" if agent.active else "no",
        )
        for agent in agents
    ]
    print(format_table(headers, rows))
    return EXIT_OK
