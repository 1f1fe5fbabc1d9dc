"""Email over SMTP with aiosmtplib: one message, one attempt; the caller decides about retries."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage

import aiosmtplib

from delivery.settings import SmtpSettings


class EmailFailure(Exception):
    """An attempt that did not hand the message to the server.

    retryable: a later attempt may succeed (connection trouble, a 4xx reply); False for a 5xx reply,
    which the server means as final. code: the server's reply code, when it gave one.
    """

    def __init__(self, reason: str, *, retryable: bool, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.code = code


def message_id(key: str, smtp: SmtpSettings) -> str:
    """The Message-ID of everything sent under `key` (a notification's delivery id, a letter's key):
    a resend carries the same id, so a mail client shows it as the same message."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in key)[:64]
    return f"<{safe}.{digest}@{smtp.domain}>"


async def send_email(smtp: SmtpSettings, message: EmailMessage) -> None:
    """Hand `message` to the server in `smtp`; raises EmailFailure unless every recipient was accepted."""
    if "From" not in message:
        message["From"] = smtp.sender
    try:
        refused, _ = await aiosmtplib.send(
            message,
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=smtp.password,
            use_tls=smtp.security == "tls",
            # plain: STARTTLS if the server offers it (aiosmtplib's None); starttls: required.
            start_tls=True if smtp.security == "starttls" else (False if smtp.security == "tls" else None),
            timeout=smtp.timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as error:
        codes = [r.code for r in error.recipients]
        raise EmailFailure(
            f"recipients refused: {', '.join(str(c) for c in codes)}",
            retryable=all(400 <= c < 500 for c in codes),
            code=codes[0] if codes else None,
        ) from None
    except aiosmtplib.SMTPResponseException as error:
        raise EmailFailure(
            f"server replied {error.code}: {error.message}"[:500], retryable=error.code < 500, code=error.code
        ) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        raise EmailFailure(f"{type(error).__name__}: {error}"[:500], retryable=True) from None
    if refused:
        codes = sorted(response.code for response in refused.values())
        raise EmailFailure(f"recipients refused: {codes}", retryable=all(c < 500 for c in codes), code=codes[0])
