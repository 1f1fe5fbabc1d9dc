"""Settings tests see only what they set: a developer's own temporal.toml stays out of them."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def no_user_config_file(monkeypatch, tmp_path: Path) -> None:
    # envconfig finds its default config file from the process's HOME, whatever environment a test passes:
    # a developer's own ~/.config/temporalio/temporal.toml must not change what these tests see.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
