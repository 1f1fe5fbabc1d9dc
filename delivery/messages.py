"""What a notification says on each channel, rendered from delivery/templates/ (Jinja2).

Pure: a NotificationContext in, an email, a webhook payload or a chat message
out. The subject names the complaint id and the level; the body the clock,
when it was due, the owner and a link to the case.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

TEMPLATE_VERSION = 1

_templates = Environment(
    loader=PackageLoader("delivery", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)

# What the recipient of each level is asked to do.
ACTIONS = {
    1: "the owner's deadline is near or passed: act on the case now, or agree a new date with the customer.",
    2: "the owner has not met the deadline: check in with them, and take the case over or reassign it if needed.",
    3: "the case is overdue at manager level: make sure it has an owner who can act today.",
}
DEAD_LETTER_ACTION = "a notification about this case reached nobody: read it here and act on the case."


@dataclass(frozen=True)
class NotificationContext:
    notification_id: int
    delivery_id: str
    complaint_id: str
    clock: str
    level: int
    recipient: str
    recipient_name: str
    recipient_role: str
    reason: str
    due_at: datetime
    deadline: datetime | None
    owner: str | None
    case_url: str

    @property
    def dead_letter(self) -> bool:
        return self.clock.startswith("undelivered:")


def clock_label(clock: str) -> str:
    if clock.startswith("promise:"):
        return f"promise {clock.removeprefix('promise:')}"
    if clock.startswith("undelivered:"):
        return f"delivery of notification {clock.removeprefix('undelivered:')}"
    return clock.replace("_", " ")


def subject(context: NotificationContext) -> str:
    if context.dead_letter:
        return f"[{context.complaint_id}] Level {context.level}: a notification could not be delivered"
    return f"[{context.complaint_id}] Level {context.level} escalation: {clock_label(context.clock)} overdue"


def _variables(context: NotificationContext) -> dict[str, Any]:
    values = asdict(context)
    values.update(
        subject=subject(context),
        headline=subject(context).split("] ", 1)[1],
        clock_label=clock_label(context.clock),
        action=DEAD_LETTER_ACTION if context.dead_letter else ACTIONS.get(context.level, ACTIONS[3]),
        due_at=_when(context.due_at),
        deadline=_when(context.deadline) if context.deadline else None,
    )
    return values


def email_message(context: NotificationContext, to: str, message_id: str) -> EmailMessage:
    """The email: plain text with an HTML alternative; Message-ID fixed by the delivery id."""
    variables = _variables(context)
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = variables["subject"]
    message["Message-ID"] = message_id
    message["X-Complaint-Id"] = context.complaint_id
    message.set_content(_templates.get_template("escalation.txt").render(variables))
    message.add_alternative(_templates.get_template("escalation.html").render(variables), subtype="html")
    return message


def webhook_payload(context: NotificationContext) -> dict[str, Any]:
    """The Standard Webhooks payload: {type, timestamp, data}."""
    variables = _variables(context)
    return {
        "type": "notification.undelivered" if context.dead_letter else "notification.escalation",
        "timestamp": variables["due_at"],
        "data": {
            "notification_id": context.notification_id,
            "complaint_id": context.complaint_id,
            "clock": context.clock,
            "level": context.level,
            "recipient": context.recipient,
            "recipient_role": context.recipient_role,
            "reason": context.reason,
            "due_at": variables["due_at"],
            "deadline": variables["deadline"],
            "owner": context.owner,
            "case_url": context.case_url,
            "subject": variables["subject"],
            "action": variables["action"],
        },
    }


def chat_payload(context: NotificationContext) -> dict[str, Any]:
    """A Slack or Teams incoming webhook's message: both read `text`."""
    return {"text": _templates.get_template("escalation.chat.txt").render(_variables(context)).strip()}


def _when(at: datetime) -> str:
    return at.isoformat(timespec="seconds")
