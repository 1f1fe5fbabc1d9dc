"""The delivery section in the lifecycle benchmark's table (engine column only: bare Temporal delivers
nothing) and its goal line."""

from __future__ import annotations

from typing import Any, Callable

from bench.delivery.figures import CHANNELS, GOAL_SHARE_MS

Add = Callable[..., None]  # bench/report.py's add(metric, engine, bare, digits)


def delivery_rows(section: dict[str, Any], add: Add) -> None:
    for run in section["runs"]:
        d = run["delivery"]
        late = d["escalation_lateness_ms"]
        add(f"delivery N={run['cases']:,}: escalation lateness p50 (ms)", late.get("p50"), None)
        add("  escalation lateness p99 (ms)", late.get("p99"), None)
        if d["notifications"] < d["expected"]:
            add("  escalations written in time (of N)", d["notifications"], None)
        for channel in CHANNELS:
            c = d[channel]
            add(f"  {channel} arrival after due p50 (ms)", c["arrival_after_due_ms"].get("p50"), None)
            add(f"  {channel} arrival after due p99 (ms)", c["arrival_after_due_ms"].get("p99"), None)
            add(f"  {channel} delivery share p99 (ms)", c["delivery_share_ms"].get("p99"), None)
            if c["missing"]:
                add(f"  {channel}: never arrived", c["missing"], None)


def delivery_goal_lines(section: dict[str, Any]) -> list[str]:
    lines = []
    for run in section["runs"]:
        goal = run["delivery"]["goal"]
        p99 = ", ".join(f"{channel} {goal['delivery_share_p99_ms'].get(channel)} ms" for channel in CHANNELS)
        d = run["delivery"]
        missing = "" if goal["all_written"] else f"; only {d['notifications']} of {d['expected']} escalations written in time"
        missing += "" if goal["all_arrived"] else "; some never arrived"
        lines.append(f"goal: delivery p99 within {GOAL_SHARE_MS / 1000:g} s of the escalation's lateness, "
                     f"N={run['cases']:,}: {p99}{missing} ({'met' if goal['met'] else 'not met'})")
        by_channel = (run.get("delivery_attempts") or {}).get("by_channel") or {}
        if any("at_commit" in c for c in by_channel.values()):
            lines.append("  delivered by the first try at commit: " + ", ".join(
                f"{channel} {c['at_commit']:,} of {c['delivered']:,}" for channel, c in sorted(by_channel.items())))
        parts = run.get("delivery_breakdown") or {}
        if parts.get("sampled"):
            p50 = {key: (value or {}).get("p50") for key, value in parts.items() if isinstance(value, dict)}
            later = f" ({parts['not_yet_sent']} more had not yet run `deliver`)" if parts.get("not_yet_sent") else ""
            lines.append(f"  the durable path, p50 of {parts['sampled']} DeliveryWorkflows{later}: row to workflow start "
                         f"{p50['row_to_workflow_start_ms']} ms, start to first `deliver` {p50['start_to_first_send_ms']} ms, "
                         f"of which workflow tasks waited {p50['workflow_task_wait_ms']} ms and activity tasks "
                         f"{p50['activity_task_wait_ms']} ms on the task queue")
    return lines
