"""The messages of a case's feed to one subscription (workflows/case_feed.py and its activities), and a
subscription as `starter.py webhooks list` shows it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from schemas.common import OutputMessage

# active: events may go out; unsubscribed: the subscription was removed or is inactive;
# stopped: an event of this case could not be delivered, and the feed waits for `webhooks resume`.
FeedStatus = Literal["active", "unsubscribed", "stopped"]


class CaseFeed(OutputMessage):
    """A feed's input: which subscription and case, and the last seq delivered (None: read it from the table)."""

    subscription_id: int
    complaint_id: str
    after: int | None = None


class FeedRead(OutputMessage):
    subscription_id: int
    complaint_id: str
    after: int | None = None


class FeedBatch(OutputMessage):
    """The next events the subscription wants, in seq order, and the timing the worker's settings give them."""

    status: FeedStatus
    cursor: int
    seqs: list[int] = []
    # True when there were more than this batch holds: read again at once.
    more: bool = False
    # A run continues as new once it has delivered this many events (its history stays small).
    events_per_run: int = 500
    idle: timedelta
    give_up: timedelta
    attempt_timeout: timedelta
    first_retry: timedelta
    max_retry: timedelta


class CaseEventDelivery(OutputMessage):
    subscription_id: int
    complaint_id: str
    seq: int


# delivered: the receiver took it (now or in an earlier attempt); unsubscribed: nothing sent, the feed ends.
CaseEventOutcome = Literal["delivered", "unsubscribed"]


class FeedStop(OutputMessage):
    """An event that could not be delivered: its feed stops there."""

    subscription_id: int
    complaint_id: str
    seq: int
    error: str


class FeedEnd(OutputMessage):
    """How a feed's run ended: idle (nothing more to send for now), unsubscribed, or stopped at an event."""

    status: Literal["idle", "unsubscribed", "stopped"]
    cursor: int
    stopped_seq: int | None = None


class Subscription(OutputMessage):
    id: int
    name: str
    url: str
    kinds: list[str]
    active: bool
    created_at: datetime
    created_by: str
    # The endpoint answered 410 Gone: nothing goes to it until `webhooks resume`.
    endpoint_disabled: str | None = None
    # Cases whose feed stopped at an event it could not deliver.
    stopped_feeds: int = 0
