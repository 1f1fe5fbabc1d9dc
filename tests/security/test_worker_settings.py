"""Issue 14.6: a worker on a real Temporal server never stores customer data in plain text by accident."""

from __future__ import annotations

import subprocess
import sys

import pytest

from config import SettingsError, load_settings
from tests.support.paths import REPO
from worker import require_a_choice_about_payloads


def test_no_keys_for_a_real_server_is_refused_unless_asked_for_by_name():
    with pytest.raises(SettingsError, match="COMPLAINTS_ENCRYPTION_KEYS=off to store customer data"):
        require_a_choice_about_payloads(None, load_settings({"TEMPORAL_ADDRESS": "temporal:7233"}))
    require_a_choice_about_payloads(None, load_settings({"TEMPORAL_ADDRESS": "temporal:7233", "COMPLAINTS_ENCRYPTION_KEYS": "off"}))


def test_the_worker_process_exits_2_with_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TEMPORAL_ADDRESS": "127.0.0.1:1", "LOG_FORMAT": "console",
           "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "COMPLAINTS_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
    done = subprocess.run([sys.executable, "worker.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "no payload encryption keys" in done.stderr and "Traceback" not in done.stderr
