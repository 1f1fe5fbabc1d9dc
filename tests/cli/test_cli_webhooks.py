"""`starter.py webhooks add|list|remove|secret|resume`, in-process against the test database."""

from __future__ import annotations

import json
import uuid

from tests.support.cli import assert_one_error, quiet_info_logs, run_cli  # noqa: F401 (fixtures)


async def test_add_list_and_remove_a_subscription(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    name, url = f"crm-{uuid.uuid4().hex[:6]}", f"https://crm.example/hooks/{uuid.uuid4().hex[:6]}"
    status, out, err = await run_cli(capsys, "webhooks", "add", name, url, "--events", "case.opened,case.closed", "--by", "ops.alice")
    assert (status, err) == (0, "")
    first, second = out.splitlines()
    assert first == f"Subscription {name} added: {url} gets case.closed, case.opened (events recorded from now on)"
    assert second.startswith("Signing secret: whsec_")
    try:
        status, out, err = await run_cli(capsys, "webhooks", "add", name, url, "--events", "case.opened")
        assert (status, out) == (2, "")
        assert_one_error(err, f"a subscription named '{name}' already exists")

        status, out, _ = await run_cli(capsys, "webhooks", "list")
        row = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert status == 0 and out.startswith("NAME") and url in row and "case.closed,case.opened" in row and "ops.alice" in row
        status, out, _ = await run_cli(capsys, "webhooks", "list", "--json")
        [listed] = [s for s in json.loads(out) if s["name"] == name]
        assert {k: listed[k] for k in ("url", "kinds", "active", "created_by", "endpoint_disabled", "stopped_feeds")} == {
            "url": url, "kinds": ["case.closed", "case.opened"], "active": True, "created_by": "ops.alice",
            "endpoint_disabled": None, "stopped_feeds": 0,
        }  # fmt: skip

        status, out, _ = await run_cli(capsys, "webhooks", "resume", name)
        assert status == 0 and out.strip().endswith("feeds sent on from where they stopped: none was stopped")
    finally:
        status, out, _ = await run_cli(capsys, "webhooks", "remove", name)
    assert (status, out.strip()) == (0, f"Subscription {name} removed: no more events go to it")
    status, out, err = await run_cli(capsys, "webhooks", "remove", name)
    assert (status, out) == (2, "")
    assert_one_error(err, f"no subscription named '{name}'")


async def test_an_endpoint_secret_is_rotated_then_the_old_one_dropped(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    url = f"https://tickets.example/{uuid.uuid4().hex[:6]}"
    status, out, _ = await run_cli(capsys, "webhooks", "secret", url)
    [old] = out.removeprefix("Signing secret: ").split()
    assert status == 0 and old.startswith("whsec_")

    status, out, err = await run_cli(capsys, "webhooks", "secret", url, "--finish-rotation")
    assert status == 2
    assert_one_error(err, "no rotation", "--rotate")
    status, out, _ = await run_cli(capsys, "webhooks", "secret", url, "--rotate")
    assert status == 0 and "requests carry a signature by each" in out
    new, still_old = out.splitlines()[1].removeprefix("Signing secrets (newest first): ").split()
    assert still_old == old and new.startswith("whsec_") and new != old
    status, out, err = await run_cli(capsys, "webhooks", "secret", url, "--rotate")
    assert status == 2
    assert_one_error(err, "already under way", "--finish-rotation")

    status, out, _ = await run_cli(capsys, "webhooks", "secret", url, "--finish-rotation")
    assert status == 0 and out.splitlines() == [f"Rotation finished for {url}: only the new secret signs", f"Signing secret: {new}"]
    status, out, _ = await run_cli(capsys, "webhooks", "secret", url)
    assert out.strip() == f"Signing secret: {new}"


async def test_unknown_event_types_and_bad_names_or_urls_are_refused_listing_what_is_valid(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    status, out, err = await run_cli(capsys, "webhooks", "add", "crm", "https://crm.example/h", "--events", "case.opened,case.deleted")
    assert (status, out) == (2, "")
    assert_one_error(err, "unknown event type 'case.deleted'; valid types are: case.accepted,", "feedback.recorded", "promise.overdue")
    status, _, err = await run_cli(capsys, "webhooks", "add", "crm", "ftp://crm.example/h", "--events", "case.opened")
    assert status == 2
    assert_one_error(err, "a webhook URL is http:// or https:// with a host")
    status, _, err = await run_cli(capsys, "webhooks", "add", "no spaces", "https://crm.example/h", "--events", "case.opened")
    assert status == 2
    assert_one_error(err, "a subscription name is 1 to 64")
    status, out, _ = await run_cli(capsys, "webhooks", "list", "--json")
    assert "crm.example/h" not in out
