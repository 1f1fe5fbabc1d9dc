"""How busy the machine was: a run's figures mean little without it, on a shared 2-core machine above all."""

from __future__ import annotations

import os
from typing import Sequence


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, None where the platform has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def load_text(values: Sequence[float] | None) -> str:
    return " ".join(f"{v:.2f}" for v in values) if values else "-"
