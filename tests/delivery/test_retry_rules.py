"""When a delivery is tried again: the pure rules of delivery/retry.py and Retry-After parsing."""

from __future__ import annotations

import random
import tomllib
from datetime import datetime, timedelta, timezone

import pytest

from delivery.retry import Backoff, email_verdict, give_up_at, webhook_verdict
from delivery.webhooks import retry_after_seconds, signed_headers
from standardwebhooks.webhooks import Webhook
from temporalio.exceptions import ActivityError, ApplicationError, RetryState, TimeoutError, TimeoutType

from workflows.delivery import send_failure

BACKOFF = Backoff(first=timedelta(seconds=1), cap=timedelta(seconds=60), slow=timedelta(minutes=15))


@pytest.mark.parametrize(
    "status, verdict",
    [(200, "delivered"), (204, "delivered"), (410, "disable"), (401, "slow_retry"), (403, "slow_retry"),
     (404, "slow_retry"), (400, "slow_retry"), (408, "retry"), (425, "retry"), (429, "retry"), (500, "retry"),
     (503, "retry"), (None, "retry"), (301, "retry")],
)  # fmt: skip
def test_answers_are_told_apart(status, verdict):
    assert webhook_verdict(status) == verdict


def test_a_5xx_smtp_reply_is_final_and_a_4xx_is_retried():
    assert (email_verdict(retryable=False), email_verdict(retryable=True)) == ("give_up", "retry")


def test_backoff_doubles_with_jitter_within_half_and_whole_and_is_capped():
    rng = random.Random(7)
    for attempt, whole in [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (20, 60)]:
        delays = [BACKOFF.delay(attempt, "retry", rng=rng).total_seconds() for _ in range(200)]
        assert all(whole / 2 <= d <= whole for d in delays), (attempt, min(delays), max(delays))
        assert max(delays) - min(delays) > whole / 4  # jittered, not one value


def test_retry_after_is_a_floor_beyond_the_cap_and_a_lasting_4xx_waits_the_slow_delay():
    assert BACKOFF.delay(1, "retry", retry_after=30).total_seconds() == 30
    assert BACKOFF.delay(1, "retry", retry_after=10_000).total_seconds() == 10_000
    assert BACKOFF.delay(1, "slow_retry").total_seconds() == 15 * 60


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds("Mon, 07 Dec 2026 12:01:30 GMT", now=now) == 90
    assert retry_after_seconds("Mon, 07 Dec 2026 11:00:00 GMT", now=now) == 0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_two_secrets_while_one_rotates_give_two_signatures_each_verifying():
    old, new = "whsec_" + "a" * 43 + "=", "whsec_" + "b" * 43 + "="
    body = b'{"type":"notification.escalation"}'
    headers = signed_headers("ntf-9", body, [new, old])
    assert headers["webhook-id"] == "ntf-9" and len(headers["webhook-signature"].split(" ")) == 2
    assert all(sig.startswith("v1,") for sig in headers["webhook-signature"].split(" "))
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == {"type": "notification.escalation"}


def test_the_give_up_age_is_the_policys_on_its_calendar_else_the_workers():
    from activities.policies import load_policies, parse_policies
    from config import DEFAULT_POLICIES_PATH

    book = load_policies(DEFAULT_POLICIES_PATH)
    queued = datetime(2026, 12, 4, 16, 0, tzinfo=timezone.utc)  # a Friday, 16:00 in London
    assert give_up_at(queued, timedelta(hours=24)) == queued + timedelta(hours=24)
    assert book.delivery_give_up("standard") is None and book.delivery_give_up(None) is None
    assert give_up_at(queued, timedelta(hours=24), book.delivery_give_up("demo")) == queued + timedelta(minutes=10)
    # Business units count working time on the policy's calendar: 2 business hours from Friday 16:00 is Monday 10:00.
    text = DEFAULT_POLICIES_PATH.read_text().replace(
        '[policies.fca.clocks]', 'delivery_give_up = "2 business hours"\n\n[policies.fca.clocks]', 1
    )
    fca = parse_policies(tomllib.loads(text), "test").delivery_give_up("fca")
    assert give_up_at(queued, timedelta(hours=24), fca) == datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)


def test_a_bad_give_up_age_is_named_by_its_dotted_path():
    from activities.policies import parse_policies
    from activities.policy_file import PolicyFileError
    from config import DEFAULT_POLICIES_PATH

    text = DEFAULT_POLICIES_PATH.read_text().replace('delivery_give_up = "10 minutes"', 'delivery_give_up = "soon"')
    with pytest.raises(PolicyFileError, match=r"policies\.demo\.delivery_give_up"):
        parse_policies(tomllib.loads(text), "test")


def _activity_error(cause: BaseException) -> ActivityError:
    error = ActivityError("activity failed", scheduled_event_id=5, started_event_id=6, identity="w1", activity_type="deliver",
                          activity_id="1", retry_state=RetryState.TIMEOUT)  # fmt: skip
    error.__cause__ = cause
    return error


def test_a_send_that_ran_out_of_time_says_so_and_what_its_last_attempt_met():
    last = ApplicationError("webhook attempt 7 failed: HTTP 503", type="DeliveryFailed")
    timeout = TimeoutError("activity ScheduleToClose timeout", type=TimeoutType.SCHEDULE_TO_CLOSE, last_heartbeat_details=[])
    timeout.__cause__ = last
    assert send_failure(_activity_error(timeout)) == (
        "activity ScheduleToClose timeout: DeliveryFailed: webhook attempt 7 failed: HTTP 503"
    )


def test_a_send_that_gave_up_gives_its_reason_in_at_most_500_characters():
    assert send_failure(_activity_error(ApplicationError("webhook gave up: HTTP 410", type="DeliveryGaveUp"))) == "DeliveryGaveUp: webhook gave up: HTTP 410"
    assert len(send_failure(_activity_error(ApplicationError("x" * 2_000)))) == 500
