"""The argument parser of every command, in one place so `--help` lists them in one order.

The options of the action commands are generated from the action models of
schemas/ (schemas.ACTIONS): a field added to a model is a flag without a change here.
"""

from __future__ import annotations

import argparse
import getpass
import re
import types
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal, NoReturn, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel, FutureDatetime, NaiveDatetime, PastDatetime

from cli.common import DEFAULT_TIMEOUT, EXIT_BAD_INPUT, PROG, CliError
from schemas import ACTIONS
from schemas.common import Channel, Severity, Status

ACTION_HELP = {
    "accept_ownership": "the assigned (or pending) owner accepts the case",
    "contact_customer": "log a contact with the customer (restarts the update clock)",
    "add_note": "add an internal note (any roster member)",
    "request_info": "ask the customer for information (pauses the resolution clock)",
    "provide_info": "record facts the customer gave (resumes the case)",
    "make_promise": "promise the customer something by a deadline",
    "keep_promise": "mark a promise kept, with evidence",
    "renegotiate_promise": "move a promise's deadline, with the customer's agreement",
    "propose_resolution": "propose a resolution and its root cause",
    "confirm_resolution": "record whether the customer is satisfied with the resolution",
    "withdraw": "the customer withdraws the complaint (the case closes, outcome withdrawn)",
    "transfer_ownership": "hand the case to another agent with a handoff note (the owner stays accountable until they accept)",
    "offer_goodwill": "offer a goodwill gesture: granted within the owner's authority, otherwise it awaits approval",
    "approve_goodwill": "a supervisor or manager with enough authority decides on a goodwill gesture",
    "record_feedback": "the customer rates the handling 1..5 after closing (within the feedback window)",
    "new_contact": "record a new contact from the customer about this problem (reopens a case closed within the feedback window)",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one `error:` line (exit 2) instead of usage text."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        unknown = re.match(r"argument <[^>]*>: invalid choice: '([^']*)'", message)
        if unknown:
            names = [
                name
                for action in self._actions
                if isinstance(action, argparse._SubParsersAction)
                for name in action.choices
                if "-" not in name  # the hyphenated aliases of the action commands
            ]
            message = f"unknown command {unknown[1]!r}; commands are: {', '.join(names)}"
        raise CliError(f"{message} (see `{self.prog} --help`)", EXIT_BAD_INPUT)


def _name_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected name=value (got {text!r})")
    return name.strip(), value


def _notification_id(text: str) -> int:
    if not re.fullmatch(r"\d{1,18}", text.strip()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a notification id is a positive whole number (got {text!r})")
    return int(text)


_RELATIVE = re.compile(r"^\+(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _moment(text: str) -> str:
    """An ISO-8601 datetime with offset, or `now` / `+30m`, `+2h`, `+3d`, `+1w` from now (UTC)."""
    text = text.strip()
    if text == "now":
        return datetime.now(timezone.utc).isoformat()
    match = _RELATIVE.match(text)
    if match:
        delta = timedelta(**{_UNITS[match[2]]: float(match[1])})
        return (datetime.now(timezone.utc) + delta).isoformat()
    return text  # the model says what is wrong with it, if anything


def _choices(literal: Any) -> str:
    return ", ".join(get_args(literal))


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _unwrap(annotation: Any) -> Any:
    """The type under Optional[...] and Annotated[...]."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation


def field_kind(annotation: Any) -> str:
    tp = _unwrap(annotation)
    origin = get_origin(tp)
    if tp is bool:
        return "bool"
    if origin is list:
        return "list"
    if origin is dict:
        return "dict"
    if tp in (datetime, AwareDatetime, NaiveDatetime, PastDatetime, FutureDatetime):
        return "datetime"
    return "str"


def _field_help(name: str, annotation: Any, required: bool) -> str:
    tp = _unwrap(annotation)
    kind = field_kind(annotation)
    if get_origin(tp) is Literal:
        text = f"one of: {_choices(tp)}"
    elif kind == "datetime":
        text = "ISO-8601 with offset (2026-11-25T17:00:00+00:00), or now, +30m, +2h, +3d, +1w"
    elif kind == "list":
        text = "one or more values"
    elif kind == "dict":
        text = "name=value, repeatable (values are strings; use --json for numbers)"
    else:
        text = name.replace("_", " ")
    return text + (" (required)" if required else "")


def action_fields(model: type[BaseModel]) -> dict[str, Any]:
    return {name: field for name, field in model.model_fields.items() if name not in ("actor", "request_id")}


def _add_action_parser(commands: argparse._SubParsersAction, name: str, model: type[BaseModel]) -> None:
    aliases = [name.replace("_", "-")] if "_" in name else []
    help_text = ACTION_HELP.get(name, f"the {name} action")
    sub = commands.add_parser(
        name,
        aliases=aliases,
        help=help_text,
        description=(
            f"{name}: {help_text}. Sent as an Update (validated; prints the case state after it) "
            "or, with --signal, as a Signal (a rejection then shows in the timeline). "
            "Give the payload with flags, or whole with --json/--file; flags override the JSON."
        ),
    )
    sub.set_defaults(command="action", action_name=name)
    sub.add_argument("complaint_id", help="the case's complaint id")
    sub.add_argument("--actor", help="agent id, customer:<customer_id> or system:<name> (required)")
    sub.add_argument("--request-id", help="idempotency key: resending it changes nothing")
    source = sub.add_mutually_exclusive_group()
    source.add_argument("--json", dest="payload_json", metavar="JSON", help="the whole payload as a JSON object")
    source.add_argument("--file", dest="payload_file", metavar="FILE", help="the whole payload from a JSON file ('-': stdin)")
    sub.add_argument("--signal", action="store_true", help="send as a Signal (fire and forget) instead of an Update")
    sub.add_argument(
        "--wait-written",
        action="store_true",
        help="return only once the action's events are in PostgreSQL too (an update answers as soon as the case applied it)",
    )
    for field_name, field in action_fields(model).items():
        kind = field_kind(field.annotation)
        dest = f"field__{field_name}"
        help_for = _field_help(field_name, field.annotation, field.is_required())
        if kind == "bool":
            group = sub.add_mutually_exclusive_group()
            group.add_argument(_flag(field_name), dest=dest, action="store_const", const=True, default=None, help=f"{field_name} = true")
            group.add_argument(
                "--not-" + field_name.replace("_", "-"),
                "--no-" + field_name.replace("_", "-"),
                dest=dest,
                action="store_const",
                const=False,
                help=f"{field_name} = false",
            )
        elif kind == "list":
            sub.add_argument(_flag(field_name), dest=dest, nargs="+", metavar="VALUE", help=help_for)
        elif kind == "dict":
            singular = field_name[:-1] if field_name.endswith("s") else field_name
            sub.add_argument(
                _flag(singular), dest=dest, action="append", type=_name_value, metavar="NAME=VALUE", help=help_for
            )
        elif kind == "datetime":
            sub.add_argument(_flag(field_name), dest=dest, type=_moment, metavar="WHEN", help=help_for)
        else:
            sub.add_argument(_flag(field_name), dest=dest, metavar="VALUE", help=help_for)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Start and work complaint cases (a thin CLI over complaint_client.ComplaintClient).",
        epilog=(
            "Settings: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, COMPLAINTS_TASK_QUEUE, DATABASE_URL. "
            "Exit status: 0 done, 2 bad input or rejected action, 1 infrastructure missing or failed."
        ),
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for Temporal and a worker to answer (default {DEFAULT_TIMEOUT:g})",
    )
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True, parser_class=_Parser)

    start = commands.add_parser(
        "start",
        help="report a complaint: opens a case, or joins/reopens the open one about the same problem",
        description=(
            "Report a complaint through its problem door: one case per customer and category. "
            "It opens a case, joins the customer's open case about the same category, reopens it "
            "if it closed within its feedback window, or opens a new case linked to it after that; "
            "the answer says which case holds the contact. Starting the same complaint id again never "
            "creates a second case. Give the intake as a JSON file (--file, '-' for stdin) or with flags; "
            "flags override the file."
        ),
    )
    start.set_defaults(command="start")
    start.add_argument("--file", metavar="FILE", help="a ComplaintIntake JSON file ('-': stdin)")
    start.add_argument("--json", dest="intake_json", metavar="JSON", help="the whole intake as a JSON object")
    start.add_argument("--complaint-id", help="1..64 of letters, digits, '_' or '-' (required)")
    start.add_argument("--customer-id", help="the customer's id (required)")
    start.add_argument("--customer-name", help="the customer's name (required)")
    start.add_argument("--email", help="the customer's email")
    start.add_argument("--phone", help="the customer's phone")
    start.add_argument("--segment", help="the customer's segment")
    start.add_argument("--channel", help=f"one of: {_choices(Channel)} (required)")
    start.add_argument("--category", help="billing, delivery, product, service, ... (required)")
    start.add_argument("--severity", help=f"one of: {_choices(Severity)} (required)")
    start.add_argument("--summary", help="1..200 characters (required)")
    start.add_argument("--details", help="the full story")
    start.add_argument("--received-at", type=_moment, metavar="WHEN", help="ISO-8601 with offset (default: now)")
    start.add_argument("--received-by", help="agent who received it: owns it if eligible")
    start.add_argument("--policy", help="standard, fca, cfpb or demo (default by severity)")
    start.add_argument("--fact", action="append", type=_name_value, metavar="NAME=VALUE", help="a known fact, repeatable (values are strings)")
    start.add_argument(
        "--direct",
        action="store_true",
        help="start a case under this complaint id even if the problem already has one (bypasses the problem door)",
    )

    for name, model in ACTIONS.items():
        _add_action_parser(commands, name, model)

    show = commands.add_parser("show", help="a case's state and timeline", description="Print a case's state, then its timeline.")
    show.set_defaults(command="show")
    show.add_argument("complaint_id")
    show.add_argument("--json", action="store_true", help="machine-readable JSON: {state, timeline, outcome}")

    listing = commands.add_parser(
        "list",
        help="cases matching filters (eventually consistent)",
        description=(
            "List cases matching every filter, newest first. Listing reads Temporal's visibility "
            "store, which is eventually consistent: a case started or changed a second ago may not show yet."
        ),
    )
    listing.set_defaults(command="list")
    listing.add_argument("--owner", help="owner agent id")
    listing.add_argument("--status", choices=get_args(Status))
    listing.add_argument("--severity", choices=get_args(Severity))
    listing.add_argument("--category")
    listing.add_argument("--customer", help="customer id")
    listing.add_argument("--min-escalation", type=int, metavar="N", help="escalation level N or higher")
    listing.add_argument("--limit", type=int, default=100, help="at most this many cases (default 100)")
    listing.add_argument("--json", action="store_true", help="machine-readable JSON list")

    roster = commands.add_parser(
        "roster",
        help="load or list the roster of agents (PostgreSQL)",
        description="The roster in the application database: DATABASE_URL, else the embedded PostgreSQL.",
    )
    roster_commands = roster.add_subparsers(dest="roster_command", metavar="<load|list>", required=True, parser_class=_Parser)
    load = roster_commands.add_parser("load", help="insert or update the agents of a roster JSON file")
    load.set_defaults(command="roster_load")
    load.add_argument("file", metavar="FILE", help="a roster JSON file: {\"agents\": [...]} ('-': stdin)")
    load.add_argument("--by", default=_who_runs_this(), help="who makes the change, kept in the roster's history (default: your login name)")
    roster_list = roster_commands.add_parser("list", help="every agent of the roster")
    roster_list.set_defaults(command="roster_list")
    roster_list.add_argument("--json", action="store_true", help="machine-readable JSON list")

    notifications = commands.add_parser(
        "notifications",
        help="the escalation notifications outbox: list them with their delivery, acknowledge them (PostgreSQL)",
        description=(
            "Each escalation of a case queues one notification for its recipient (the owner, their "
            "supervisor or a manager), which the worker delivers by email and webhooks (docs/delivery.md). "
            "The outbox lives in the application database: DATABASE_URL, else the embedded PostgreSQL."
        ),
    )
    notification_commands = notifications.add_subparsers(
        dest="notifications_command", metavar="<list|ack>", required=True, parser_class=_Parser
    )
    pending = notification_commands.add_parser(
        "list",
        help="notifications nobody has acknowledged, oldest first (--all: acknowledged ones too, newest first)",
        description=(
            "Notifications nobody has acknowledged yet, oldest first, with their delivery status (queued, sending, "
            "retrying, delivered, dead); with --all, acknowledged ones too, newest first; --attempts shows each "
            "delivery attempt."
        ),
    )
    pending.set_defaults(command="notifications_list")
    pending.add_argument("--recipient", metavar="AGENT", help="only those for this agent id")
    pending.add_argument("--case", metavar="COMPLAINT_ID", help="only those of this case")
    pending.add_argument("--all", action="store_true", help="acknowledged ones too")
    pending.add_argument("--status", choices=["queued", "sending", "retrying", "delivered", "dead"], help="only those with this delivery status")
    pending.add_argument("--attempts", action="store_true", help="each delivery attempt under its notification")
    pending.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    pending.add_argument("--json", action="store_true", help="machine-readable JSON list")
    ack = notification_commands.add_parser(
        "ack",
        help="record that you acted on notifications",
        description=(
            "Record who acted on these notifications (they leave the list of unacknowledged ones). "
            "Acknowledging one twice changes nothing: the first acknowledgement is kept."
        ),
    )
    ack.set_defaults(command="notifications_ack")
    ack.add_argument("ids", nargs="+", type=_notification_id, metavar="ID", help="notification ids (see `notifications list`)")
    ack.add_argument("--by", default=_who_runs_this(), help="who acknowledges them (default: your login name)")

    from cli.webhooks import add_webhooks_parser

    add_webhooks_parser(commands, _Parser, _who_runs_this())

    from cli.letters import add_letters_parser

    add_letters_parser(commands, _Parser)

    from codec.server import add_arguments as add_codec_server_arguments

    codec_server = commands.add_parser(
        "codec-server",
        help="serve the payload codec so the Temporal UI and CLI show decrypted cases (runs until Ctrl-C)",
        description=(
            "Temporal's codec server protocol (POST /decode, /encode) with the worker's encryption keys "
            "(COMPLAINTS_ENCRYPTION_KEYS, else the embedded stack's data/encryption-keys). Point the Temporal UI's "
            "codec endpoint, or `temporal ... --codec-endpoint`, at it. Whoever reaches it can read every case: "
            "it listens on 127.0.0.1 unless --host says otherwise."
        ),
    )
    codec_server.set_defaults(command="codec_server")
    add_codec_server_arguments(codec_server)

    token = commands.add_parser(
        "token",
        help="print an actor assertion for one action on one case (for scripts and the temporal CLI)",
        description=(
            "Sign an actor assertion with COMPLAINTS_SIGNING_KEY (else the embedded stack's development issuer): "
            "it proves ACTOR takes ACTION on CASE with exactly the payload in FILE, for 5 minutes. Send it as the "
            "`actor-assertion` header, e.g. `temporal workflow update execute ... --headers actor-assertion='\"<token>\"'`."
        ),
    )
    token.set_defaults(command="token")
    token.add_argument("--as", dest="actor", required=True, metavar="ACTOR", help="who acts: a.patel, customer:CU-9, system:crm")
    token.add_argument("--action", required=True, help="the action's name, or `start`")
    token.add_argument("--case", required=True, metavar="COMPLAINT_ID", help="the case (its workflow is complaint-<id>)")
    token.add_argument("--payload", required=True, metavar="FILE", help="the action's JSON payload, exactly as it will be sent")

    api_token = commands.add_parser(
        "api-token",
        help="print a bearer token for the HTTP API from the embedded development issuer",
        description="A JWT of the embedded stack's development issuer for `Authorization: Bearer ...` (make api).",
    )
    api_token.set_defaults(command="api_token")
    api_token.add_argument("--as", dest="actor", required=True, metavar="ACTOR", help="a.patel, customer:CU-9 or system:crm")
    api_token.add_argument("--minutes", type=int, default=60, help="how long it is valid (default 60)")
    return parser


def _who_runs_this() -> str:
    """The login name, for the audit trail when --by is not given."""
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container with an unknown uid)
        return "unknown"
