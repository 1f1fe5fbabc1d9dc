"""The escalation benchmark's report: one table (metric | engine | bare Temporal | engine/bare) and the
notes under it on what the table does not say."""

from __future__ import annotations

from typing import Any

from bench.escalations.plan import GUARD, MEASURED_CLOCK, MEASURED_LEVEL


def ratio(engine: float | None, bare: float | None) -> str:
    if engine is None or bare is None or bare == 0:
        return "n/a"
    return f"{engine / bare:.1f}x"


def table(engine: dict[str, Any], bare: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    def late(side: dict[str, Any], key: str) -> float | None:
        return side.get("lateness_ms", {}).get(key)

    def mib(side: dict[str, Any]) -> float | None:
        kib = side.get("worker_peak_rss_kib")
        return round(kib / 1024, 1) if kib else None

    rows = [
        ("lateness p50 (ms)", late(engine, "p50"), late(bare, "p50")),
        ("lateness p99 (ms)", late(engine, "p99"), late(bare, "p99")),
        ("lateness max (ms)", late(engine, "max"), late(bare, "max")),
        ("escalations/s", engine.get("escalations_per_second"), bare.get("escalations_per_second")),
        ("worker peak RSS (MiB)", mib(engine), mib(bare)),
    ]
    header = ("metric", "engine", "bare Temporal", "ratio (engine/bare)")
    cells = [header] + [(m, "-" if e is None else f"{e:g}", "-" if b is None else f"{b:g}", ratio(e, b)) for m, e, b in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(4)]
    lines = [" | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    ratios = {m: (None if ratio(e, b) == "n/a" else round(e / b, 2)) for m, e, b in rows}  # type: ignore[operator]
    return "\n".join(lines), ratios


def notes(engine: dict[str, Any], bare: dict[str, Any], warn: float) -> list[str]:
    """What the table does not say: the promise ladder's other levels, background, where the CPU went."""
    lines = []
    if engine:
        l1 = engine.get("level1", {}).get("lateness_ms", {})
        window = engine.get("promise_escalations_in_window", {})
        by_level = window.get("by_level", {})
        lines.append(
            f"engine: {engine.get('seen')}/{engine.get('expected')} level-{MEASURED_LEVEL} rows of {MEASURED_CLOCK}. "
            f"The same cases' level 1 fell due {warn:g}s earlier (lateness p50 {l1.get('p50')} ms, max {l1.get('max')} ms); "
            f"from {warn + GUARD:g}s before the due instant to the last level-2 row the worker wrote "
            f"{by_level.get('1')} level-1, {by_level.get('2')} level-2 and {by_level.get('3')} level-3 rows "
            f"({window.get('per_second')} promise escalations/s), and "
            f"{engine.get('other_escalations_written_in_window')} rows of other clocks."
        )
        setup = engine.get("setup", {})
        lines.append(
            f"engine setup: {setup.get('open_seconds')}s to open the cases, {setup.get('promise_seconds')}s to make the promises, "
            f"then {setup.get('lead_seconds')}s to the due instant"
            + (" (placed after the other clocks' levels)" if setup.get("quiet_window_found") else " (no quiet window found)")
        )
    for name, side in (("engine", engine), ("bare", bare)):
        burst = side.get("cpu", {}).get("burst", {})
        if burst:
            lines.append(
                f"{name} burst, {burst.get('wall_seconds')}s: worker {burst.get('worker_cores', '?')} cores, "
                f"Temporal server {burst.get('temporal_server_cores', '?')} cores, machine {_percent(burst.get('machine_busy'))} busy"
            )
    return lines


def _percent(share: float | None) -> str:
    return "?" if share is None else f"{share * 100:.0f}%"
