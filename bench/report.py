"""The lifecycle benchmark's report: one table (metric | engine | bare Temporal | engine/bare), ending
with the wall time and each side's load average, and the goals' lines."""

from __future__ import annotations

from typing import Any

from bench.common import fmt, ratio, render_table
from bench.delivery.report import delivery_goal_lines, delivery_rows


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []

    def add(metric: str, engine: float | int | None, bare: float | int | None, digits: int = 1) -> None:
        r = ratio(engine, bare)
        rows.append((metric, fmt(engine, digits), fmt(bare, digits), "-" if r is None else f"{r:.2f}"))

    def lat(side: dict[str, Any], p: str) -> float | None:
        return side.get(p)

    sections = results["sections"]
    if "lifecycle" in sections:
        s = sections["lifecycle"]
        e, b = s["engine"], s["bare"]
        add(f"lifecycle N={s['cases']}, {s['agents']} agents: cases/s", e["cases_per_second"], b["cases_per_second"], 2)
        add("  actions/s", e["actions_per_second"], b["actions_per_second"])
        add("  worker CPU (cores)", e["cpu"].get("worker_cores"), b["cpu"].get("worker_cores"), 2)
        add("  Temporal server CPU (cores)", e["cpu"].get("temporal_server_cores"), b["cpu"].get("temporal_server_cores"), 2)
        rounds = s.get("rounds", [])
        if len(rounds) > 1:
            for number, r in enumerate(rounds, 1):
                add(f"  round {number} ({r['order']}): cases/s", r["engine_cases_per_second"], r["bare_cases_per_second"], 2)
    if "latency" in sections:
        for key, s in sections["latency"].items():
            add(f"update latency, {key} agent{'s' if key != '1' else ''}: p50 (ms)", lat(s["engine"], "p50"), lat(s["bare"], "p50"))
            add("  p99 (ms)", lat(s["engine"], "p99"), lat(s["bare"], "p99"))
            if "engine_read_your_writes" in s:
                ryw = s["engine_read_your_writes"]
                add("  engine reading its writes: p50 (ms)", lat(ryw, "p50"), lat(s["bare"], "p50"))
                add("  engine reading its writes: p99 (ms)", lat(ryw, "p99"), lat(s["bare"], "p99"))
    if "queries" in sections:
        s = sections["queries"]
        for q in ("state", "timeline"):
            add(f"query {q}, {s['events']} events: p50 (ms)", s["engine"][q]["p50"], s["bare"][q]["p50"], 2)
            add("  p99 (ms)", s["engine"][q]["p99"], s["bare"][q]["p99"], 2)
        f = s.get("fleet", {})
        if "engine" in f:
            add(f"fleet list, page of 100 (of {f['engine']['workflows']:,} / {f['bare']['workflows']:,}): p50 (ms)",
                f["engine"]["list_page_of_100"]["p50"], f["bare"]["list_page_of_100"]["p50"])
            add("  p99 (ms)", f["engine"]["list_page_of_100"]["p99"], f["bare"]["list_page_of_100"]["p99"])
            add("fleet count: p50 (ms)", f["engine"]["count"]["p50"], f["bare"]["count"]["p50"])
    if "scale" in sections:
        s = sections["scale"]
        e, b = s["engine"], s["bare"]
        add(f"scale: worker RSS with {s['open_cases']:,} open (MiB)",
            round(e["worker_rss_kib_with_cases_open"] / 1024, 1), round(b["worker_rss_kib_with_cases_open"] / 1024, 1))
        add("  MiB per 1,000 open cases", e["mib_per_1000_open_cases"], b["mib_per_1000_open_cases"])
        add("  opened per second (started)", e["opened_per_second"], b["opened_per_second"])
        add("  taken up by the worker per second", e.get("taken_up_per_second"), b.get("taken_up_per_second"))
        el, bl = e["lifecycle_with_cases_open"], b["lifecycle_with_cases_open"]
        add(f"  lifecycle N={s['lifecycle_cases']} beside them: cases/s", el["cases_per_second"], bl["cases_per_second"], 2)
    if "database" in sections:
        s = sections["database"]
        if "pool" in s:
            add(f"database ({s['cases']} cases): round trips per action", s["pool"]["round_trips_per_action"], 0, 2)
            add("  statements per action (pool)", s["pool"]["statements_per_action"], 0, 2)
        if "pg_stat_statements" in s:
            add("  statements per action (pg_stat_statements)", s["pg_stat_statements"]["statements_per_action"], 0, 2)
    if "growth" in sections:
        for run in sections["growth"]["runs"]:
            add(f"growth N={run['cases']:,}: cases/s", run["engine"]["cases_per_second"], run["bare"]["cases_per_second"], 2)
            add("  update p50 (ms)", run["engine"]["update_latency_ms"]["p50"], run["bare"]["update_latency_ms"]["p50"])
    if "delivery" in sections:
        delivery_rows(sections["delivery"], add)
    rows.extend(closing_rows(results))
    return rows


def closing_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The run's wall time, then each side's: the seconds of its measured runs and the machine's load then."""
    rows = [("wall time of the run (s)", fmt(results.get("seconds")), "", "")]
    sides = results.get("sides", {})
    engine, bare = sides.get("engine", {}), sides.get("bare", {})
    for metric, key, digits in (("  of each side's measured runs (s)", "seconds", 1),
                                ("load average, 1 min, at each side's run ends (mean)", "load_average_1min_mean", 2)):
        e, b = engine.get(key), bare.get(key)
        r = ratio(e, b)
        rows.append((metric, fmt(e, digits), fmt(b, digits), "-" if r is None else f"{r:.2f}"))
    return rows


def print_table(results: dict[str, Any]) -> None:
    machine = results["machine"]
    print(f"\nEngine against bare Temporal, run {results['run_id']} ({results['date']}), "
          f"{machine.get('cores')} cores, {machine.get('memory_mib')} MiB, Python {machine.get('python')}, "
          f"temporalio {machine.get('temporalio')}, Temporal {machine.get('temporal_server')}, "
          f"PostgreSQL {machine.get('postgresql')}; load average {results['load_average_before']} before, "
          f"{results['load_average_after']} after\n")
    print(render_table(("metric", "engine", "bare Temporal", "engine/bare"), table_rows(results)))
    print()


def goal_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    sections = results["sections"]
    if "lifecycle" in sections:
        s = sections["lifecycle"]
        r = s["ratio"]["cases_per_second"]
        of = f" (median of {len(s['rounds'])} rounds)" if len(s.get("rounds", [])) > 1 else ""
        lines.append(f"goal: lifecycle engine/bare >= 1.0: {r}{of} ({'met' if r is not None and r >= 1.0 else 'not met'})")
    if "latency" in sections:
        for key, s in sections["latency"].items():
            r = s["ratio"]["p50"]
            lines.append(f"goal: update p50 within 1.2x of bare with {key} agent(s): {r} "
                         f"({'met' if r is not None and r <= 1.2 else 'not met'})")
    if "delivery" in sections:
        lines.extend(delivery_goal_lines(sections["delivery"]))
    return lines
