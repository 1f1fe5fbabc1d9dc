"""`webhooks add|list|remove|secret|resume`: other systems' subscriptions to case events (docs/delivery.md,
"Case events for other systems")."""

from __future__ import annotations

import argparse
import json
import re
from urllib.parse import urlsplit

from cli.common import EXIT_OK, PROG, CliError, Session, format_table, with_database
from config import Settings
from delivery.case_events import EVENT_TYPES, UnknownEventType, parse_event_types

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def add_webhooks_parser(commands: argparse._SubParsersAction, parser_class: type, who_runs_this: str) -> None:
    webhooks = commands.add_parser(
        "webhooks",
        help="subscriptions of other systems (a CRM, a ticketing tool) to case events, sent as signed webhooks",
        description=(
            "A subscription sends each case event of the types it names to its URL as a Standard Webhook, signed "
            "with the endpoint's secret, retried with backoff, in each case's order. Event types: "
            + ", ".join(EVENT_TYPES) + ". They live in the application database: DATABASE_URL, else the embedded PostgreSQL."
        ),
    )
    sub = webhooks.add_subparsers(dest="webhooks_command", metavar="<add|list|remove|secret|resume>", required=True,
                                  parser_class=parser_class)  # fmt: skip
    add = sub.add_parser("add", help="subscribe a URL to event types; prints the endpoint's signing secret")
    add.set_defaults(command="webhooks_add")
    add.add_argument("name", metavar="NAME", help="the subscription's name (letters, digits, '.', '_', '-')")
    add.add_argument("url", metavar="URL", help="where events are POSTed (http:// or https://)")
    add.add_argument("--events", required=True, metavar="TYPES", help="comma-separated event types, e.g. case.opened,case.closed")
    add.add_argument("--by", default=who_runs_this, help="who adds it (default: your login name)")
    listing = sub.add_parser("list", help="every subscription, with its endpoint's state and stopped feeds")
    listing.set_defaults(command="webhooks_list")
    listing.add_argument("--json", action="store_true", help="machine-readable JSON list")
    remove = sub.add_parser("remove", help="delete a subscription: no more events go to it")
    remove.set_defaults(command="webhooks_remove")
    remove.add_argument("name", metavar="NAME")
    secret = sub.add_parser(
        "secret",
        help="print an endpoint's signing secrets, or rotate them",
        description=(
            "Without an option: print the endpoint's secrets, newest first. --rotate adds a new secret: every "
            "request then carries two signatures, so receivers can move to the new one; --finish-rotation drops the old."
        ),
    )
    secret.set_defaults(command="webhooks_secret")
    secret.add_argument("url", metavar="URL")
    how = secret.add_mutually_exclusive_group()
    how.add_argument("--rotate", action="store_true", help="add a new secret; both sign until the rotation is finished")
    how.add_argument("--finish-rotation", action="store_true", help="keep only the newest secret")
    resume = sub.add_parser(
        "resume",
        help="re-enable a subscription's endpoint and send its stopped feeds on from the event they stopped at",
    )
    resume.set_defaults(command="webhooks_resume")
    resume.add_argument("name", metavar="NAME")


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise CliError(f"a subscription name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (got {name!r})")
    return name


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"a webhook URL is http:// or https:// with a host (got {url!r})")
    return url


def _store_errors(work):  # type: ignore[no-untyped-def]
    """Run a store call, its SubscriptionError as a CliError."""
    from activities.subscriptions_store import SubscriptionError

    async def run(pool):  # type: ignore[no-untyped-def]
        async with pool.acquire() as conn:
            try:
                return await work(conn)
            except SubscriptionError as error:
                raise CliError(str(error)) from None

    return run


async def cmd_webhooks_add(args: argparse.Namespace, settings: Settings, timeout: float) -> int:
    from activities.subscriptions_store import add_subscription

    name, url = _check_name(args.name), _check_url(args.url)
    try:
        kinds = parse_event_types(args.events)
    except UnknownEventType as error:
        raise CliError(str(error)) from None
    added, secrets = await with_database(settings, timeout, _store_errors(lambda conn: add_subscription(conn, name, url, kinds, args.by)))
    print(f"Subscription {added.name} added: {added.url} gets {', '.join(added.kinds)} (events recorded from now on)")
    _print_secrets(secrets)
    if added.endpoint_disabled:
        print(f"Its endpoint is disabled ({added.endpoint_disabled}): nothing is sent until `{PROG} webhooks resume {added.name}`")
    return EXIT_OK


async def cmd_webhooks_list(args: argparse.Namespace, settings: Settings, timeout: float) -> int:
    from activities.subscriptions_store import list_subscriptions

    found = await with_database(settings, timeout, list_subscriptions)
    if args.json:
        print(json.dumps([s.model_dump(mode="json") for s in found], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not found:
        print(f"No subscriptions: add one with `{PROG} webhooks add NAME URL --events case.opened,...`")
        return EXIT_OK
    headers = ["NAME", "URL", "EVENTS", "ENDPOINT", "STOPPED FEEDS", "CREATED", "BY"]
    rows = [
        [s.name, s.url, ",".join(s.kinds), f"disabled: {s.endpoint_disabled}" if s.endpoint_disabled else "ok",
         str(s.stopped_feeds), s.created_at.strftime("%Y-%m-%d %H:%M:%S %Z"), s.created_by]
        for s in found
    ]  # fmt: skip
    print(format_table(headers, rows))
    return EXIT_OK


async def cmd_webhooks_remove(args: argparse.Namespace, settings: Settings, timeout: float) -> int:
    from activities.subscriptions_store import remove_subscription

    if not await with_database(settings, timeout, lambda pool: remove_subscription(pool, args.name)):
        raise CliError(f"no subscription named {args.name!r} (see `{PROG} webhooks list`)")
    print(f"Subscription {args.name} removed: no more events go to it")
    return EXIT_OK


async def cmd_webhooks_secret(args: argparse.Namespace, settings: Settings, timeout: float) -> int:
    from activities.delivery_store import endpoint_secrets
    from activities.subscriptions_store import finish_rotation, rotate_secret

    url = _check_url(args.url)
    operation = rotate_secret if args.rotate else finish_rotation if args.finish_rotation else endpoint_secrets
    secrets = await with_database(settings, timeout, _store_errors(lambda conn: operation(conn, url)))
    if args.rotate:
        print(f"New secret for {url}; until `{PROG} webhooks secret {url} --finish-rotation`, requests carry a signature by each:")
    elif args.finish_rotation:
        print(f"Rotation finished for {url}: only the new secret signs")
    _print_secrets(secrets)
    return EXIT_OK


async def cmd_webhooks_resume(args: argparse.Namespace, settings: Settings, timeout: float) -> int:
    from activities.case_feed_starter import CaseFeedStarter
    from activities.subscriptions_store import resume_subscription

    subscription_id, cases = await with_database(settings, timeout, _store_errors(lambda conn: resume_subscription(conn, args.name)))
    if cases:
        session = Session(settings, timeout)
        engine = await session.connect()
        feeds = CaseFeedStarter(engine.client, settings.task_queue)
        for complaint_id in cases:
            await session.call(feeds.wake(complaint_id, [subscription_id]), needs_worker=False)
    shown = ", ".join(cases) if cases else "none was stopped"
    print(f"Subscription {args.name} resumed: its endpoint is enabled; feeds sent on from where they stopped: {shown}")
    return EXIT_OK


def _print_secrets(secrets: list[str]) -> None:
    if len(secrets) == 1:
        print(f"Signing secret: {secrets[0]}")
    else:
        print("Signing secrets (newest first): " + " ".join(secrets))
