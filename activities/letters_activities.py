"""send_letter: render one of the policy's letters (delivery/letters.py) and email it to the customer.

Idempotent: the email's Message-ID is derived from (complaint_id, letter, occurrence), so a retried or
repeated send is recognisably the same message. A mail server that is away or answers 4xx makes the activity
fail and Temporal retry it (workflows/letters.py, SEND_RETRY), while the case goes on. A 5xx refusal, or a
worker with no mail server (SMTP_URL unset), answers `not_sent`: the case drafts the letter for its owner.
A template that does not render fails at once (LetterTemplateError, not retried).

The logs name the case, the letter, its template and version and the server's reply code; never the
customer's name, address or the letter's text, and never the server's reply text (it may quote the address).
"""

from __future__ import annotations

from typing import Any, Callable

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from delivery.email import EmailFailure, message_id, send_email
from delivery.letters import LetterTemplateError, email_message, letter_key, letter_variables, render_letter
from delivery.settings import DeliverySettings
from schemas.letters import LetterDelivery, SendLetter

NO_MAIL_SERVER = "this worker has no mail server to send it with (SMTP_URL is not set)"


class LetterActivities:
    def __init__(self, delivery: DeliverySettings | None) -> None:
        self.delivery = delivery

    def all(self) -> list[Callable[..., Any]]:
        """The bound activities, for Worker(activities=...)."""
        return [self.send_letter]

    @activity.defn(name="send_letter")
    async def send_letter(self, letter: SendLetter) -> LetterDelivery:
        log = structlog.get_logger("letters").bind(
            complaint_id=letter.complaint_id,
            letter=letter.letter,
            template=letter.template,
            occurrence=letter.occurrence,
            attempt=activity.info().attempt if activity.in_activity() else None,
        )
        try:
            rendered = render_letter(letter.template, letter_variables(letter))
        except LetterTemplateError as error:
            log.error("letter template does not render")
            raise ApplicationError(str(error), type="LetterTemplateError", non_retryable=True) from None
        log = log.bind(version=rendered.version)
        smtp = self.delivery.smtp if self.delivery is not None else None
        if smtp is None:
            log.warning("letter not sent: no mail server")
            return LetterDelivery(outcome="not_sent", template=letter.template, version=rendered.version, reason=NO_MAIL_SERVER)
        mid = message_id(letter_key(letter.complaint_id, letter.letter, letter.occurrence), smtp)
        try:
            await send_email(smtp, email_message(letter, rendered, mid))
        except EmailFailure as failure:
            if failure.retryable:
                log.warning("letter not sent yet: the mail server is away or busy; retrying", code=failure.code)
                raise ApplicationError(
                    f"the mail server did not take letter {letter.letter} (reply code {failure.code}); retrying",
                    type="EmailFailure",
                ) from None
            log.warning("letter refused by the mail server", code=failure.code)
            return LetterDelivery(
                outcome="not_sent",
                template=letter.template,
                version=rendered.version,
                message_id=mid,
                reason=f"the mail server refused it (reply code {failure.code})",
                code=failure.code,
            )
        log.info("letter sent", message_id=mid)
        return LetterDelivery(outcome="sent", template=letter.template, version=rendered.version, message_id=mid)
