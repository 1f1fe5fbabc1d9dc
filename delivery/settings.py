"""Delivery settings, all from the environment (README, "Settings"; docs/delivery.md).

SMTP_URL names the mail server: smtp://host:port (plain, or STARTTLS when
the server offers it), smtp+starttls:// (STARTTLS required) or smtps:// (TLS
from the first byte), with user:password@ for auth. Unset: no email is sent,
and a notification whose recipient has no webhook stays queued for a person.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal
from urllib.parse import unquote, urlsplit

from config import SettingsError
from delivery.retry import Backoff

SmtpSecurity = Literal["plain", "starttls", "tls"]

SMTP_SCHEMES: dict[str, SmtpSecurity] = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}
DEFAULT_PORTS = {"plain": 25, "starttls": 587, "tls": 465}
DEFAULT_SENDER = "complaints@localhost"
# A route's claim outlasts the longest send by this much (activities/route_claims.py).
LEASE_MARGIN = timedelta(seconds=5)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: SmtpSecurity = "plain"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # The From address (SMTP_FROM); its domain also names the Message-IDs.
    sender: str = DEFAULT_SENDER
    timeout: float = 10.0

    @property
    def domain(self) -> str:
        return self.sender.rpartition("@")[2] or "localhost"


@dataclass(frozen=True)
class DeliverySettings:
    smtp: SmtpSettings | None = None
    # Where a message links to a case: the HTTP API's base URL (COMPLAINTS_PUBLIC_URL).
    public_url: str = "http://127.0.0.1:8000"
    # A notification still undelivered this long after it was queued is given up: its row is `dead`.
    give_up: timedelta = timedelta(hours=24)
    # Backoff between attempts: first delay, doubling with jitter up to the cap.
    first_retry: timedelta = timedelta(seconds=1)
    max_retry: timedelta = timedelta(hours=1)
    # An endpoint that answers 401, 403, 404 or another lasting 4xx is tried again no sooner than this.
    client_error_retry: timedelta = timedelta(minutes=15)
    # One attempt (connect, send, answer) may take this long before Temporal retries it elsewhere.
    attempt_timeout: timedelta = timedelta(seconds=30)
    # How long a webhook request may take; None: 80% of attempt_timeout, so an attempt ends before Temporal
    # retries it. Longer only costs overlap, which the route's claim turns into waiting (activities/route_claims.py).
    request_timeout: timedelta | None = None
    # A case's feed to a subscription with nothing left to send waits this long for more before it ends.
    feed_idle: timedelta = timedelta(seconds=60)
    # A queued, sending or retrying row older than this raises `delivery_stalled`.
    stalled_after: timedelta = timedelta(minutes=15)
    # How often each worker's stall monitor reads the backlog (delivery/monitor.py).
    monitor_every: timedelta = timedelta(seconds=30)
    # The worker's Prometheus metrics port (COMPLAINTS_METRICS_PORT); None: no metrics server.
    metrics_port: int | None = None
    # Where /metrics listens (COMPLAINTS_METRICS_ADDRESS): loopback unless told, 0.0.0.0 in a container.
    metrics_address: str = "127.0.0.1"
    # Addresses that also get a team's escalations (COMPLAINTS_TEAM_EMAILS="billing=leads@example.com,...").
    team_emails: Mapping[str, str] = field(default_factory=dict)
    # The worker that commits an escalation sends it at once, before its delivery workflow runs
    # (DELIVERY_FIRST_TRY=off: only the workflow sends; activities/first_try.py).
    first_try: bool = True

    @property
    def backoff(self) -> Backoff:
        """The waits between a send's attempts (delivery/retry.py)."""
        return Backoff(self.first_retry, self.max_retry, self.client_error_retry)

    @property
    def webhook_timeout(self) -> timedelta:
        return self.request_timeout or self.attempt_timeout * 0.8

    @property
    def send_limit(self) -> timedelta:
        """The longest one send may take, whatever its channel: it is cut off there."""
        smtp = timedelta(seconds=self.smtp.timeout) if self.smtp is not None else timedelta(0)
        return max(self.attempt_timeout, self.webhook_timeout, smtp)

    @property
    def route_lease(self) -> timedelta:
        """How long an attempt's claim on its route lasts: a send still on the wire is never sent beside."""
        return self.send_limit + LEASE_MARGIN


def delivery_settings(environ: Mapping[str, str] | None = None) -> DeliverySettings:
    env = os.environ if environ is None else environ
    defaults = DeliverySettings()
    return DeliverySettings(
        smtp=smtp_settings(env),
        public_url=(env.get("COMPLAINTS_PUBLIC_URL") or defaults.public_url).rstrip("/"),
        give_up=_duration(env, "DELIVERY_GIVE_UP_SECONDS", defaults.give_up),
        first_retry=_duration(env, "DELIVERY_FIRST_RETRY_SECONDS", defaults.first_retry),
        max_retry=_duration(env, "DELIVERY_MAX_RETRY_SECONDS", defaults.max_retry),
        client_error_retry=_duration(env, "DELIVERY_CLIENT_ERROR_RETRY_SECONDS", defaults.client_error_retry),
        attempt_timeout=_duration(env, "DELIVERY_ATTEMPT_TIMEOUT_SECONDS", defaults.attempt_timeout),
        request_timeout=_duration(env, "DELIVERY_REQUEST_TIMEOUT_SECONDS", None),
        stalled_after=_duration(env, "DELIVERY_STALLED_SECONDS", defaults.stalled_after),
        feed_idle=_duration(env, "CASE_FEED_IDLE_SECONDS", defaults.feed_idle),
        monitor_every=_duration(env, "DELIVERY_MONITOR_SECONDS", defaults.monitor_every),
        metrics_port=_port(env, "COMPLAINTS_METRICS_PORT"),
        metrics_address=env.get("COMPLAINTS_METRICS_ADDRESS") or defaults.metrics_address,
        team_emails=_team_emails(env.get("COMPLAINTS_TEAM_EMAILS") or ""),
        first_try=_switch(env, "DELIVERY_FIRST_TRY", defaults.first_try),
    )


def smtp_settings(env: Mapping[str, str]) -> SmtpSettings | None:
    raw = env.get("SMTP_URL")
    if not raw:
        return None
    url = urlsplit(raw)
    security = SMTP_SCHEMES.get(url.scheme)
    if security is None or not url.hostname:
        raise SettingsError(
            f"SMTP_URL must be smtp://, smtp+starttls:// or smtps:// with a host, e.g. smtp+starttls://user:pass@mail.example.com:587 (got scheme {url.scheme!r})"
        )
    try:
        port = url.port or DEFAULT_PORTS[security]
    except ValueError:
        raise SettingsError("SMTP_URL has a port that is not a number from 1 to 65535") from None
    return SmtpSettings(
        host=url.hostname,
        port=port,
        security=security,
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        sender=env.get("SMTP_FROM") or DEFAULT_SENDER,
        timeout=_duration(env, "SMTP_TIMEOUT_SECONDS", timedelta(seconds=10)).total_seconds(),
    )


def _duration(env: Mapping[str, str], name: str, default: timedelta | None) -> timedelta | None:
    raw = env.get(name)
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise SettingsError(f"{name} must be a positive number of seconds (got {raw!r})")
    return timedelta(seconds=seconds)


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in ("on", "off"):
        raise SettingsError(f"{name} must be on or off (got {raw!r})")
    return raw == "on"


def _port(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"{name} must be a port number from 1 to 65535 (got {raw!r})")
    return int(raw)


def _team_emails(raw: str) -> dict[str, str]:
    teams: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        team, _, address = entry.partition("=")
        if not team.strip() or "@" not in address:
            raise SettingsError(f"COMPLAINTS_TEAM_EMAILS entries are team=address (got {entry!r})")
        teams[team.strip()] = address.strip()
    return teams
