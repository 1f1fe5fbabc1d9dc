"""The SMTP sink and the webhook receiver the delivery tests use (tools/harness holds them for the demo,
the drill and the benchmark too)."""

from tools.harness.smtp_sink import SmtpSink
from tools.harness.webhook_receiver import WebhookReceiver, receiving

__all__ = ["SmtpSink", "WebhookReceiver", "receiving"]
