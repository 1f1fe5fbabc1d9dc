"""Delivery settings (issue 20.1): defaults, overrides, and a clear message naming a bad variable;
a bad one stops the worker with exit status 2 before anything starts."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from config import SettingsError
from delivery.settings import DeliverySettings, delivery_settings
from tests.support.paths import REPO


def test_nothing_set_gives_the_defaults():
    assert delivery_settings({}) == DeliverySettings()
    assert delivery_settings({"SMTP_URL": "", "COMPLAINTS_METRICS_PORT": "", "COMPLAINTS_TEAM_EMAILS": ""}) == DeliverySettings()


def test_every_setting_is_read():
    settings = delivery_settings({
        "SMTP_URL": "smtp+starttls://mailer:s%40cret@mail.example.com", "SMTP_FROM": "escalations@example.com",
        "COMPLAINTS_PUBLIC_URL": "https://complaints.example.com/", "DELIVERY_GIVE_UP_SECONDS": "3600",
        "DELIVERY_STALLED_SECONDS": "120", "DELIVERY_MONITOR_SECONDS": "5", "COMPLAINTS_METRICS_PORT": "9464",
        "COMPLAINTS_TEAM_EMAILS": " billing=billing-leads@example.com , network=noc@example.com",
        "DELIVERY_FIRST_TRY": "Off",
    })  # fmt: skip
    smtp = settings.smtp
    assert smtp is not None
    assert (smtp.host, smtp.port, smtp.security, smtp.username, smtp.password, smtp.domain) == (
        "mail.example.com", 587, "starttls", "mailer", "s@cret", "example.com",
    )  # fmt: skip
    assert "s@cret" not in repr(settings)
    assert settings.public_url == "https://complaints.example.com"
    assert (settings.give_up, settings.stalled_after, settings.monitor_every) == (
        timedelta(hours=1), timedelta(minutes=2), timedelta(seconds=5),
    )  # fmt: skip
    assert settings.metrics_port == 9464
    assert settings.team_emails == {"billing": "billing-leads@example.com", "network": "noc@example.com"}
    assert settings.first_try is False and DeliverySettings().first_try is True


@pytest.mark.parametrize(
    "name, raw, message",
    [
        ("COMPLAINTS_METRICS_PORT", "http", "COMPLAINTS_METRICS_PORT must be a port number from 1 to 65535 (got 'http')"),
        ("COMPLAINTS_METRICS_PORT", "0", "COMPLAINTS_METRICS_PORT must be a port number from 1 to 65535 (got '0')"),
        ("COMPLAINTS_METRICS_PORT", "65536", "COMPLAINTS_METRICS_PORT must be a port number from 1 to 65535 (got '65536')"),
        ("SMTP_URL", "http://mail.example.com", "SMTP_URL must be smtp://, smtp+starttls:// or smtps:// with a host"),
        ("SMTP_URL", "smtp://", "SMTP_URL must be smtp://, smtp+starttls:// or smtps:// with a host"),
        ("SMTP_URL", "smtp://mail.example.com:99999", "SMTP_URL has a port that is not a number from 1 to 65535"),
        ("DELIVERY_GIVE_UP_SECONDS", "a day", "DELIVERY_GIVE_UP_SECONDS must be a positive number of seconds (got 'a day')"),
        ("DELIVERY_GIVE_UP_SECONDS", "0", "DELIVERY_GIVE_UP_SECONDS must be a positive number of seconds (got '0')"),
        ("DELIVERY_MONITOR_SECONDS", "-5", "DELIVERY_MONITOR_SECONDS must be a positive number of seconds (got '-5')"),
        ("DELIVERY_FIRST_TRY", "yes", "DELIVERY_FIRST_TRY must be on or off (got 'yes')"),
        ("COMPLAINTS_TEAM_EMAILS", "billing", "COMPLAINTS_TEAM_EMAILS entries are team=address (got 'billing')"),
        ("COMPLAINTS_TEAM_EMAILS", "billing=x@y.com,=noc@example.com", "COMPLAINTS_TEAM_EMAILS entries are team=address (got '=noc@example.com')"),
        ("COMPLAINTS_TEAM_EMAILS", "network=noc", "COMPLAINTS_TEAM_EMAILS entries are team=address (got 'network=noc')"),
    ],
)
def test_a_bad_setting_is_refused_with_a_message_naming_it(name, raw, message):
    with pytest.raises(SettingsError) as refused:
        delivery_settings({name: raw})
    assert str(refused.value).startswith(message), str(refused.value)


def test_a_bad_delivery_setting_stops_the_worker_with_exit_2_before_anything_starts(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TEMPORAL_ADDRESS": "127.0.0.1:1", "LOG_FORMAT": "console",
           "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "COMPLAINTS_DATA_DIR": str(tmp_path / "data"),
           "COMPLAINTS_ENCRYPTION_KEYS": "off", "COMPLAINTS_IDENTITY": "trusted-callers",
           "COMPLAINTS_METRICS_PORT": "metrics"}  # fmt: skip
    done = subprocess.run([sys.executable, "worker.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "COMPLAINTS_METRICS_PORT must be a port number" in done.stderr and "Traceback" not in done.stderr
