"""The complaints command line: `python starter.py <command>` (see `--help`).

A thin layer over complaint_client.ComplaintClient: every command validates
its input against the models of schemas/ before it connects, then makes one
call on the client and prints the answer with complaint_client.render.

    python starter.py start --file intake.json
    python starter.py start --complaint-id C1 --customer-id cust-1 --customer-name "Ana Lima" \\
        --channel email --category billing --severity high --summary "Charged twice"
    python starter.py accept_ownership C1 --actor a.patel
    python starter.py make_promise C1 --actor a.patel --description "Refund" --due-at +2d
    python starter.py add_note C1 --json '{"actor": "a.patel", "text": "Called the bank"}' --signal
    python starter.py show C1 [--json]
    python starter.py list --owner a.patel --min-escalation 2
    python starter.py roster load roster/demo.json
    python starter.py roster list
    python starter.py notifications list --recipient s.lindqvist
    python starter.py notifications ack 12 13
    python starter.py codec-server --port 8081

Settings come from the environment (config.py): TEMPORAL_ADDRESS (default the
embedded dev server on 127.0.0.1:7233; the CLI never starts one),
TEMPORAL_NAMESPACE, COMPLAINTS_TASK_QUEUE, DATABASE_URL (roster and
notifications commands; default the embedded PostgreSQL in COMPLAINTS_DATA_DIR),
COMPLAINTS_ENCRYPTION_KEYS and the TLS / API-key variables (README, "Customer
data and security"): the CLI reads and writes cases with the worker's keys.

Exit status: 0 done; 2 bad input or an action the engine rejected; 1 the
infrastructure (Temporal, a worker, PostgreSQL) is missing or failed. Every
error is one line on stderr starting with "error:".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
import types
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, Sequence, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel, FutureDatetime, NaiveDatetime, PastDatetime, ValidationError

from complaint_client import CommandRejected, ComplaintClient, StartResult
from complaint_client.render import render_outcome, render_state, render_timeline
from stack.process import exit_for_real
from config import Settings, SettingsError, load_settings
from schemas import ACTIONS, ComplaintIntake, Roster, describe_validation_error
from schemas.common import Channel, Severity, Status
from workflows.complaint import workflow_id_for

PROG = "starter.py"

EXIT_OK = 0
EXIT_INFRA = 1
EXIT_BAD_INPUT = 2

# How long a command waits for Temporal or a worker to answer before saying which is missing.
DEFAULT_TIMEOUT = 20.0
# How long `start` waits for routing to name the owner.
OWNER_WAIT = timedelta(seconds=10)

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


class CliError(Exception):
    """Ends a command with one `error:` line on stderr and `status`."""

    def __init__(self, message: str, status: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# --- argument parsing ---------------------------------------------------------


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


def _kind(annotation: Any) -> str:
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
    kind = _kind(annotation)
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


def _action_fields(model: type[BaseModel]) -> dict[str, Any]:
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
    for field_name, field in _action_fields(model).items():
        kind = _kind(field.annotation)
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
    roster_list = roster_commands.add_parser("list", help="every agent of the roster")
    roster_list.set_defaults(command="roster_list")
    roster_list.add_argument("--json", action="store_true", help="machine-readable JSON list")

    notifications = commands.add_parser(
        "notifications",
        help="the escalation notifications outbox: list pending ones, acknowledge them (PostgreSQL)",
        description=(
            "Each escalation of a case queues one notification for its recipient (the owner, their "
            "supervisor or a manager). The outbox lives in the application database: DATABASE_URL, "
            "else the embedded PostgreSQL."
        ),
    )
    notification_commands = notifications.add_subparsers(
        dest="notifications_command", metavar="<list|ack>", required=True, parser_class=_Parser
    )
    pending = notification_commands.add_parser(
        "list",
        help="pending notifications, oldest first (--all: delivered ones too, newest first)",
        description="Pending notifications, oldest first; with --all, delivered ones too, newest first.",
    )
    pending.set_defaults(command="notifications_list")
    pending.add_argument("--recipient", metavar="AGENT", help="only those for this agent id")
    pending.add_argument("--case", metavar="COMPLAINT_ID", help="only those of this case")
    pending.add_argument("--all", action="store_true", help="delivered ones too")
    pending.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    pending.add_argument("--json", action="store_true", help="machine-readable JSON list")
    ack = notification_commands.add_parser(
        "ack",
        help="mark notifications delivered",
        description="Mark notifications delivered (they leave the pending list). Acknowledging one twice changes nothing.",
    )
    ack.set_defaults(command="notifications_ack")
    ack.add_argument("ids", nargs="+", type=_notification_id, metavar="ID", help="notification ids (see `notifications list`)")

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
    return parser


# --- input --------------------------------------------------------------------


def _read_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(f"{where} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None


def _read_json_file(path: str) -> Any:
    if path == "-":
        return _read_json(sys.stdin.read(), "stdin")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise CliError(f"cannot read {path}: not UTF-8 text") from None
    return _read_json(text, path)


def _json_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CliError(f"{where} must be a JSON object (got {type(value).__name__})")
    return value


def _validated(model: type[BaseModel], data: Any, what: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise CliError(describe_validation_error(error, what)) from None


def intake_from_args(args: argparse.Namespace) -> ComplaintIntake:
    if args.file and args.intake_json:
        raise CliError("give the intake with --file or --json, not both")
    data: dict[str, Any] = {}
    if args.file:
        data = dict(_json_object(_read_json_file(args.file), args.file))
    elif args.intake_json:
        data = dict(_json_object(_read_json(args.intake_json, "--json"), "--json"))
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
    return _validated(ComplaintIntake, data, "complaint intake")


def action_from_args(args: argparse.Namespace) -> Any:
    model = ACTIONS[args.action_name]
    data: dict[str, Any] = {}
    if args.payload_file:
        data = dict(_json_object(_read_json_file(args.payload_file), args.payload_file))
    elif args.payload_json:
        data = dict(_json_object(_read_json(args.payload_json, "--json"), "--json"))
    if args.actor is not None:
        data["actor"] = args.actor
    if args.request_id is not None:
        data["request_id"] = args.request_id
    for field_name, field in _action_fields(model).items():
        value = getattr(args, f"field__{field_name}")
        if value is None:
            continue
        if _kind(field.annotation) == "dict":
            existing = data.get(field_name)
            value = {**(existing if isinstance(existing, dict) else {}), **dict(value)}
        data[field_name] = value
    return _validated(model, data, args.action_name)


def _check_complaint_id(complaint_id: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", complaint_id):
        raise CliError(f"complaint id must be 1 to 64 characters of letters, digits, '_' or '-' (got {complaint_id!r})")


# --- talking to Temporal --------------------------------------------------------


class Session:
    """The settings and a connected ComplaintClient, with errors turned into CliError."""

    def __init__(self, settings: Settings, timeout: float) -> None:
        self.settings = settings
        self.timeout = timeout
        self.client: ComplaintClient | None = None

    @property
    def address(self) -> str:
        return self.settings.client_address

    def _unreachable(self) -> CliError:
        return CliError(
            f"cannot reach Temporal at {self.address} — start it with `make worker` or set TEMPORAL_ADDRESS",
            EXIT_INFRA,
        )

    async def connect(self) -> ComplaintClient:
        from stack.client import connect_client

        try:
            client = await asyncio.wait_for(
                connect_client(self.address, self.settings.namespace, settings=self.settings), self.timeout
            )
        except SettingsError as error:  # encryption keys, TLS files, API key: say which variable to fix
            raise CliError(str(error)) from None
        except (RuntimeError, OSError, asyncio.TimeoutError):
            raise self._unreachable() from None
        self.client = ComplaintClient(client, self.settings.task_queue)
        return self.client

    async def call(self, awaitable: Any, complaint_id: str | None = None, *, needs_worker: bool = True, hint: str = "") -> Any:
        """Await one client call, turning Temporal's errors into one-line CliErrors."""
        from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
        from temporalio.service import RPCError, RPCStatusCode

        try:
            return await asyncio.wait_for(awaitable, self.timeout)
        except (asyncio.TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            if needs_worker:
                raise CliError(
                    f"no answer within {self.timeout:g}s — is a worker polling task queue "
                    f"'{self.settings.task_queue}' on {self.address}? Start one with `make worker`" + hint,
                    EXIT_INFRA,
                ) from None
            raise CliError(f"Temporal at {self.address} did not answer within {self.timeout:g}s", EXIT_INFRA) from None
        except CommandRejected as rejected:
            raise CliError(f"rejected ({rejected.kind}): {rejected.message}") from None
        except WorkflowUpdateFailedError as error:
            raise CliError(f"the case failed to apply the action: {error.cause or error}", EXIT_INFRA) from None
        except RPCError as error:
            message = str(error.message or error)
            if error.status == RPCStatusCode.NOT_FOUND:
                if "amespace" in message:
                    raise CliError(
                        f"namespace '{self.settings.namespace}' not found on Temporal at {self.address} "
                        "(set TEMPORAL_NAMESPACE)",
                        EXIT_INFRA,
                    ) from None
                if complaint_id is not None:
                    workflow_id = workflow_id_for(complaint_id)
                    if "completed" in message or "finished" in message:
                        raise CliError(
                            f"case {complaint_id} is finished: workflow {workflow_id} has completed and takes no more actions"
                        ) from None
                    raise CliError(f"no case {complaint_id} (workflow {workflow_id} not found)") from None
            if error.status == RPCStatusCode.INVALID_ARGUMENT:
                raise CliError(f"Temporal refused the request: {message}") from None
            if error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                raise self._unreachable() from None
            raise CliError(f"Temporal at {self.address}: {message}", EXIT_INFRA) from None
        except SettingsError as error:  # a payload encrypted with a key this process lacks
            raise CliError(str(error), EXIT_INFRA) from None
        except RuntimeError as error:
            # The SDK's transport errors (a server gone mid-command) surface as RuntimeError.
            if "connect" in str(error).lower() or "transport" in str(error).lower():
                raise self._unreachable() from None
            raise


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
        _error_line(f"warning: {error.message}")
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
    _check_complaint_id(args.complaint_id)
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

    _check_complaint_id(args.complaint_id)
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

    earlier = await _with_database(session.settings, session.timeout, read)
    try:
        return join_timeline(complaint_id, earlier, held)
    except IncompleteTimeline as error:
        raise CliError(f"{error} (set DATABASE_URL to the engine's database)", EXIT_INFRA) from None


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (headers, *rows)]
    return "\n".join(lines)


async def cmd_list(args: argparse.Namespace, session: Session) -> int:
    from complaint_client.client import list_query

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
    print(_table(headers, rows))
    return EXIT_OK


# --- the roster (PostgreSQL) ----------------------------------------------------


async def _with_database(settings: Settings, timeout: float, work) -> Any:  # type: ignore[no-untyped-def]
    """Run `work(pool)` on a migrated pool: DATABASE_URL, else the embedded PostgreSQL."""
    import asyncpg

    from activities.db import apply_migrations, create_pool
    from stack import redact_url

    embedded = None
    if settings.database_url is None:
        from stack.postgres import start_embedded_postgres

        try:
            embedded = await asyncio.to_thread(start_embedded_postgres, settings.data_dir)
        except Exception as error:  # the wheel raises several kinds; the message is what matters
            raise CliError(
                f"could not start the embedded PostgreSQL in {settings.data_dir / 'postgres'}: "
                f"{_first_line(error)} (or set DATABASE_URL)",
                EXIT_INFRA,
            ) from None
        url, where = embedded.url, f"the embedded PostgreSQL in {settings.data_dir / 'postgres'}"
    else:
        url, where = settings.database_url, redact_url(settings.database_url)
    try:
        try:
            pool = await asyncio.wait_for(create_pool(url, min_size=1, max_size=2, timeout=timeout), timeout)
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise CliError(f"cannot reach PostgreSQL at {where}: {_first_line(error)} (set DATABASE_URL)", EXIT_INFRA) from None
        try:
            await apply_migrations(pool)
            return await work(pool)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise CliError(f"PostgreSQL at {where}: {_first_line(error)}", EXIT_INFRA) from None
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


async def cmd_roster_load(args: argparse.Namespace, settings: Settings, timeout: float) -> int:
    from activities.roster_store import RosterError, load_roster

    roster = _validated(Roster, _read_json_file(args.file), "roster")

    async def load(pool) -> int:  # type: ignore[no-untyped-def]
        try:
            return await load_roster(pool, roster)
        except RosterError as error:
            raise CliError(str(error)) from None

    count = await _with_database(settings, timeout, load)
    print(f"Roster loaded: {count} agent{'s' if count != 1 else ''} inserted or updated")
    return EXIT_OK


async def cmd_roster_list(args: argparse.Namespace, settings: Settings, timeout: float) -> int:
    from activities.roster_store import list_agents

    agents = await _with_database(settings, timeout, list_agents)
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
    print(_table(headers, rows))
    return EXIT_OK


# --- the notifications outbox (PostgreSQL) -------------------------------------------


def _when_exact(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _clip(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def cmd_notifications_list(args: argparse.Namespace, settings: Settings, timeout: float) -> int:
    from activities.notifications_store import list_notifications

    if args.limit < 1:
        raise CliError(f"--limit must be at least 1 (got {args.limit})")
    if args.case is not None:
        _check_complaint_id(args.case)

    async def fetch(pool):  # type: ignore[no-untyped-def]
        return await list_notifications(
            pool, recipient=args.recipient, complaint_id=args.case, pending_only=not args.all, limit=args.limit
        )

    found = await _with_database(settings, timeout, fetch)
    if args.json:
        print(json.dumps([n.model_dump(mode="json") for n in found], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not found:
        whom = f" for {args.recipient}" if args.recipient else ""
        which = f" of case {args.case}" if args.case else ""
        print(f"No {'' if args.all else 'pending '}notifications{whom}{which}.")
        return EXIT_OK
    headers = ["ID", "CREATED", "RECIPIENT", "CASE", "CLOCK", "LEVEL", "REASON", "DUE"]
    if args.all:
        headers.append("DELIVERED")
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
        ]
        if args.all:
            row.append(_when_exact(n.delivered_at))
        rows.append(row)
    print(_table(headers, rows))
    return EXIT_OK


async def cmd_notifications_ack(args: argparse.Namespace, settings: Settings, timeout: float) -> int:
    from activities.notifications_store import get_notifications, mark_delivered

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
            return known, await mark_delivered(conn, wanted)

    known, marked = await _with_database(settings, timeout, ack)
    already = [n.id for n in known if n.delivered_at is not None]
    message = f"Marked {marked} notification{'s' if marked != 1 else ''} delivered"
    if already:
        message += f"; already delivered: {', '.join(str(i) for i in already)}"
    print(message)
    return EXIT_OK


async def cmd_codec_server(args: argparse.Namespace, settings: Settings) -> int:
    from codec.server import run_from_args

    try:
        return await run_from_args(args, settings)
    except SettingsError as error:
        raise CliError(str(error)) from None
    except OSError as error:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}", EXIT_INFRA) from None


# --- entry points ---------------------------------------------------------------


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _error_line(text: str) -> None:
    print(text.replace("\n", " "), file=sys.stderr)


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
        if args.command == "codec_server":
            return await cmd_codec_server(args, settings)
        session = Session(settings, args.timeout)
        handler = {"start": cmd_start, "action": cmd_action, "show": cmd_show, "list": cmd_list}[args.command]
        return await handler(args, session)
    except CliError as error:
        _error_line(f"error: {error.message}")
        return error.status
    except SystemExit as exit:  # --help, --version
        return exit.code if isinstance(exit.code, int) else (EXIT_OK if exit.code is None else EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        _error_line("error: interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`starter.py show C1 | head`): nothing is wrong, say nothing.
        return EXIT_OK
    except Exception as error:  # never a traceback: one line says what broke
        _error_line(f"error: unexpected {type(error).__name__}: {_first_line(error)}")
        return EXIT_INFRA


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command to completion in a new event loop; returns the exit status (never exits)."""
    try:
        return asyncio.run(amain(argv))
    except KeyboardInterrupt:
        _error_line("error: interrupted")
        return 130


def run() -> NoReturn:
    settings = load_settings()
    try:
        from logs import configure_logging

        # Only warnings and errors, on stderr: stdout is the command's answer.
        configure_logging(settings.log_format, level=logging.WARNING)
    except ValueError:
        pass  # a bad LOG_FORMAT must not stop the CLI
    exit_for_real(main())


if __name__ == "__main__":
    run()
