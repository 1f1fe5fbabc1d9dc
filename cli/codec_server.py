"""`codec-server`: the payload codec served for the Temporal UI and CLI (codec/server.py)."""

from __future__ import annotations

import argparse

from cli.common import EXIT_INFRA, CliError
from config import Settings, SettingsError


async def cmd_codec_server(args: argparse.Namespace, settings: Settings) -> int:
    from codec.server import run_from_args

    try:
        return await run_from_args(args, settings)
    except SettingsError as error:
        raise CliError(str(error)) from None
    except OSError as error:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}", EXIT_INFRA) from None
