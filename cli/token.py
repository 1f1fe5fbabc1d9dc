"""`token`: print an actor assertion for a script, e.g. for the temporal CLI's `--headers actor-assertion=...`;
`api-token`: print a bearer token of the embedded development issuer, for the HTTP API (api/auth.py)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cli.common import CliError
from config import Settings
from identity.assertion import sign
from identity.setup import signing_key_for
from workflows.start_input import workflow_id_for


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    key = signing_key_for(settings)
    if key is None:
        raise CliError("no signing key: set COMPLAINTS_SIGNING_KEY, or run the embedded stack once (make demo)")
    try:
        payload = json.loads(Path(args.payload).read_text())
    except OSError as error:
        raise CliError(f"cannot read {args.payload}: {error.strerror or error}") from None
    except ValueError as error:
        raise CliError(f"{args.payload} is not JSON: {error}") from None
    if args.action != "start" and isinstance(payload, dict) and payload.get("actor") not in (None, args.actor):
        raise CliError(f"the payload's actor is {payload.get('actor')!r}, not {args.actor!r}: a worker would refuse it")
    print(
        sign(
            key.private_key, issuer=key.issuer, key_id=key.key_id, sub=args.actor,
            workflow_id=workflow_id_for(args.case), action=args.action, payload=payload, now=datetime.now(timezone.utc),
        )  # fmt: skip
    )
    return 0


def cmd_api_token(args: argparse.Namespace, settings: Settings) -> int:
    from api.auth import bearer_token

    key = signing_key_for(settings)
    if key is None:
        raise CliError("no development issuer here: run the embedded stack once (make api), or use your OIDC provider's tokens")
    print(bearer_token(key, args.actor, lifetime=timedelta(minutes=args.minutes)))
    return 0
