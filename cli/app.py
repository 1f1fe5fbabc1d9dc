"""Runs one command: parse, dispatch to the command group's module, turn every failure into an exit status."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Sequence

from cli.cases import cmd_action, cmd_show, cmd_start
from cli.codec_server import cmd_codec_server
from cli.common import EXIT_BAD_INPUT, EXIT_INFRA, EXIT_OK, CliError, Session, first_line, print_error
from cli.fleet import cmd_list
from cli.letters import cmd_letters_render
from cli.notifications import cmd_notifications_ack, cmd_notifications_list
from cli.parser import build_parser
from cli.roster import cmd_roster_list, cmd_roster_load
from cli.token import cmd_api_token, cmd_token
from cli.webhooks import cmd_webhooks_add, cmd_webhooks_list, cmd_webhooks_remove, cmd_webhooks_resume, cmd_webhooks_secret
from config import SettingsError, load_settings


async def amain(argv: Sequence[str] | None = None) -> int:
    """Run one command in the running event loop; returns the exit status (never raises)."""
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        settings = load_settings()
        if args.timeout <= 0:
            raise CliError(f"--timeout must be positive (got {args.timeout:g})")
        if args.command == "roster_load":
            return await cmd_roster_load(args, settings, args.timeout)
        if args.command == "roster_list":
            return await cmd_roster_list(args, settings, args.timeout)
        if args.command == "notifications_list":
            return await cmd_notifications_list(args, settings, args.timeout)
        if args.command == "notifications_ack":
            return await cmd_notifications_ack(args, settings, args.timeout)
        if args.command.startswith("webhooks_"):
            webhooks = {"webhooks_add": cmd_webhooks_add, "webhooks_list": cmd_webhooks_list, "webhooks_remove": cmd_webhooks_remove,
                        "webhooks_secret": cmd_webhooks_secret, "webhooks_resume": cmd_webhooks_resume}  # fmt: skip
            return await webhooks[args.command](args, settings, args.timeout)
        if args.command == "codec_server":
            return await cmd_codec_server(args, settings)
        if args.command == "token":
            return cmd_token(args, settings)
        if args.command == "api_token":
            return cmd_api_token(args, settings)
        session = Session(settings, args.timeout)
        handler = {"start": cmd_start, "action": cmd_action, "show": cmd_show, "list": cmd_list,
                   "letters_render": cmd_letters_render}[args.command]  # fmt: skip
        return await handler(args, session)
    except CliError as error:
        print_error(f"error: {error.message}")
        return error.status
    except SettingsError as error:  # a bad variable or temporal CLI profile: say which
        print_error(f"error: {error}")
        return EXIT_BAD_INPUT
    except SystemExit as exit:  # --help, --version
        return exit.code if isinstance(exit.code, int) else (EXIT_OK if exit.code is None else EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print_error("error: interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`starter.py show C1 | head`): nothing is wrong, say nothing.
        return EXIT_OK
    except Exception as error:  # never a traceback: one line says what broke
        print_error(f"error: unexpected {type(error).__name__}: {first_line(error)}")
        return EXIT_INFRA


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command to completion in a new event loop; returns the exit status (never exits)."""
    try:
        return asyncio.run(amain(argv))
    except KeyboardInterrupt:
        print_error("error: interrupted")
        return 130


def configure_cli_logging() -> None:
    try:
        settings = load_settings()
    except SettingsError:
        return  # amain reports it as the command's one-line error
        from logs import configure_logging

        # Only warnings and errors, on stderr: stdout is the command's answer.
        configure_logging(settings.log_format, level=logging.WARNING)
    except ValueError:
        pass  # a bad LOG_FORMAT must not stop the CLI
