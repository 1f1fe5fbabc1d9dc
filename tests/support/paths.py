"""Where things are: the repository's root, whatever folder of tests/ a module sits in."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
