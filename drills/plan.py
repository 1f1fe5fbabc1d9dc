"""The drill's plan: its options, and when each disruption happens (drawn from the seed, so a run can be repeated)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Options:
    cases: int
    seed: int
    kills: int
    outage: float
    server_restart: bool
    server_stop: str
    promise_min: float
    promise_max: float
    timeout: float
    pool_size: int
    work_dir: Path | None
    keep: bool
    json_path: Path | None


@dataclass(frozen=True)
class Plan:
    """When each disruption happens, in seconds after the cases are opened."""

    kills: list[float]
    kill_delays: list[float]  # seconds between each kill and the restart
    server_restart: float | None
    outage_start: float | None
    outage_seconds: float


def make_plan(rng: random.Random, kills: int, server_restart: bool, outage: float) -> Plan:
    """Kills spread over three windows (before the server restart, between it and the outage, after the
    outage), none within a few seconds of the other disruptions, at least 5 s apart."""
    restart_at = rng.uniform(14, 18) if server_restart else None
    anchor = restart_at if restart_at is not None else 16.0
    outage_at = anchor + rng.uniform(20, 24) if outage > 0 else None
    outage_end = (outage_at + outage) if outage_at is not None else anchor + 22
    windows = [(3.0, anchor - 4), (anchor + 8, anchor + 16), (outage_end + 3, outage_end + 20)]
    order = [0, 2, 1, 2]  # the first four kills: before, after, between, after again
    per_window: Counter[int] = Counter(order[i % len(order)] for i in range(kills))
    moments: list[float] = []
    for index, count in per_window.items():
        low, high = windows[index]
        for _ in range(200):  # rejection sampling for the spacing; falls back to even spacing
            picks = sorted(rng.uniform(low, high) for _ in range(count))
            if all(b - a >= 5 for a, b in zip(picks, picks[1:])):
                break
        else:
            step = (high - low) / (count + 1)
            picks = [low + step * (k + 1) for k in range(count)]
        moments.extend(picks)
    moments.sort()
    return Plan(
        kills=moments,
        kill_delays=[round(rng.uniform(0.5, 4.0), 2) for _ in moments],
        server_restart=restart_at,
        outage_start=outage_at,
        outage_seconds=outage,
    )
