"""The letters a case emails, each through the send_letter activity, while the case goes on.

The case marks a letter `sending` (workflows/case/letters.py) at the opening, when an action is applied or
when clocks fire; right there the workflow starts its activity, so the commands follow the case's state.
The send runs beside the case: on a slow or failing mail server the activity retries (SEND_RETRY) for up to
SEND_WINDOW while actions and clocks go on, and its answer is recorded when it comes: customer_contacted by
system:letters (letter_sent for the owner's own letter), or the letter drafted for the owner when it could
not be sent. A run ends only once every letter has its answer, so none is lost to continue-as-new.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Callable

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from schemas.letters import LetterDelivery, SendLetter
    from schemas.state import TimelineEvent
    from workflows.case import Case

# One attempt renders the letter and hands it to the mail server (whose own timeout is SMTP_TIMEOUT_SECONDS).
SEND_TIMEOUT = timedelta(seconds=60)
# A letter no mail server took within this long is drafted for the owner instead.
SEND_WINDOW = timedelta(hours=12)
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["LetterTemplateError"],
)


class LetterPost:
    """The case's letters on their way: one send_letter activity per (letter, occurrence)."""

    def __init__(self) -> None:
        self._in_flight: dict[tuple[str, int], asyncio.Future[None]] = {}

    @property
    def idle(self) -> bool:
        """No letter is waiting for its answer."""
        return not self._in_flight

    def send_due(self, case: Case, answered: Callable[[], None]) -> None:
        """Start the send of every letter the case marked `sending` that is not on its way yet.

        answered: called once a letter's answer changed the case (the workflow points its alarms again).
        """
        for letter in case.letters_to_send():
            key = (letter.letter, letter.occurrence)
            if key in self._in_flight:
                continue
            handle = workflow.start_activity(
                "send_letter",
                letter,
                result_type=LetterDelivery,
                start_to_close_timeout=SEND_TIMEOUT,
                schedule_to_close_timeout=SEND_WINDOW,
                retry_policy=SEND_RETRY,
                summary=f"letter {letter.letter} #{letter.occurrence}",
            )
            self._in_flight[key] = asyncio.ensure_future(self._answer(case, letter, handle, answered))
            _log("letter sending", letter)

    async def _answer(self, case: Case, letter: SendLetter, handle: Any, answered: Callable[[], None]) -> None:
        try:
            delivery: LetterDelivery = await handle
        except ActivityError as error:
            delivery = LetterDelivery(outcome="not_sent", template=letter.template, reason=_why_not_sent(error))
        events = case.letter_delivered(letter.letter, letter.occurrence, delivery, workflow.now())
        del self._in_flight[(letter.letter, letter.occurrence)]
        answered()
        _log("letter sent" if delivery.outcome == "sent" else "letter drafted for the owner", letter, _kinds(events),
             outcome=delivery.outcome, code=delivery.code, message_id=delivery.message_id)  # fmt: skip


def _why_not_sent(error: ActivityError) -> str:
    """Why the activity gave up, without the mail server's words (they may quote the address)."""
    cause = error.cause
    if isinstance(cause, TimeoutError):
        hours = SEND_WINDOW.total_seconds() / 3600
        return f"no mail server took it within {hours:g} hours"
    if isinstance(cause, ApplicationError) and cause.type == "LetterTemplateError":
        return f"its template does not render ({cause.message})"
    return f"sending it failed ({type(cause).__name__ if cause else 'ActivityError'})"


def _kinds(events: list[TimelineEvent]) -> list[str]:
    return [event.kind for event in events]


def _log(message: str, letter: SendLetter, events: list[str] | None = None, **fields: Any) -> None:
    """A log line about a letter: its case, name, template and occurrence, never the customer's data or words."""
    extra = {"complaint_id": letter.complaint_id, "letter": letter.letter, "template": letter.template,
             "occurrence": letter.occurrence, "events": events, **fields}  # fmt: skip
    workflow.logger.info(message, extra={key: value for key, value in extra.items() if value is not None})
