"""The send_letter activity's input and answer (activities/letters_activities.py, workflows/letters.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from schemas.common import InputMessage, OutputMessage

class SendLetter(InputMessage):
    """One letter to render and email. (complaint_id, letter, occurrence) names the email's Message-ID, so a
    retried or repeated send of the same occurrence is recognisably the same message."""

    complaint_id: str
    letter: str
    template: str
    occurrence: int
    to: str
    customer_name: str
    summary: str
    received_at: datetime
    # The calendar's time zone: the letter's dates are written in it.
    time_zone: str
    owner_name: str | None = None
    # The owner's words, for a letter they send.
    message: str | None = None
    resolution: str | None = None
    # What the letter may tell the customer about what comes next: the resolution deadline, when the
    # next update is due, and the latest date the owner promised something by.
    resolution_due: datetime | None = None
    next_update_by: datetime | None = None
    promised_by: datetime | None = None


class LetterDelivery(OutputMessage):
    """What became of a letter: sent (with the Message-ID), or not sent and why (then it is drafted for the owner).

    The reason never quotes the server's reply, which may name the address.
    """

    outcome: Literal["sent", "not_sent"]
    template: str
    version: str | None = None
    message_id: str | None = None
    reason: str | None = None
    code: int | None = None
