"""The verdict, the printed report and the JSON summary of a drill run (drills/seeds.py reads the summary's
`passed` and `counts`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from drills.agents import POLICY, Agents, CaseRun
from drills.checks import Check
from drills.faults import Chaos, backoffs_text, gaps_text
from drills.plan import Options
from drills.replay import ReplayFailure, deferred_queries
from tools.harness.report import load_average, load_text
from tools.harness.worker import WorkerProcess
from workflows.start_input import workflow_id_for

# Exit status when every failure is a history Temporal cannot replay (README, "Crash drills").
EXIT_NONDETERMINISM_ONLY = 3


@dataclass
class Finished:
    """What a run leaves for its verdict."""

    opts: Options
    run_id: str
    postgres: str  # version and where it runs
    work_dir: Path
    runs: list[CaseRun]
    replayed: list[str]  # the workflow ids replayed: every case's, door's and delivery's
    check: Check
    replay_failures: dict[str, ReplayFailure]
    chaos: Chaos
    worker: WorkerProcess
    agents: Agents
    worker_alive_at_end: bool
    stop_status: int | None
    cases_seconds: float


@dataclass
class Verdict:
    passed: bool
    status: int
    agent_errors: list[CaseRun]
    stuck: list[CaseRun]
    failed_live: list[str]
    nondeterministic: list[str]
    engine_problems: list[str]
    engine_failures: int
    deferred_queries: int  # refused by the worker's guard (workflow_runner.py)


def judge(f: Finished) -> Verdict:
    check, worker, replay_failures = f.check, f.worker, f.replay_failures
    agent_errors = [r for r in f.runs if r.error]
    stuck = [r for r in f.runs if r.stuck]
    outage_failed = 0 if f.chaos.plan.outage_start is None or f.chaos.outage.worker_alive_after else 1
    ended_badly = 0 if f.worker_alive_at_end and f.stop_status == 0 else 1
    failures = (
        len(replay_failures)
        + check.cases - check.completed + check.gaps + check.duplicates + check.lost + check.mismatched
        + check.snapshot_problems + (check.cases - check.promise_escalated_l1_l2) + len(agent_errors)
        + len(worker.unexpected_exits) + outage_failed + ended_badly + check.delivery.failures
    )
    # Histories Temporal cannot replay because the SDK composed a workflow task's activations
    # differently live and on replay (classify; README, "Crash drills"): every problem of those
    # cases follows from it (stuck, no timeline). Every other problem is the engine's.
    # A case stuck on a nondeterminism error although its recorded history replays with this code:
    # the code is deterministic on that history, so what differed is what the SDK gave the worker.
    failed_live = sorted(
        r.complaint_id for r in stuck
        if "TMPRL1100" in (r.stuck or "") and workflow_id_for(r.complaint_id) not in replay_failures
    )
    nondeterministic = sorted(
        {w.removeprefix("complaint-") for w, fail in replay_failures.items() if fail.cause == "sdk"} | set(failed_live)
    )
    follows = ("did not complete", "timeline query failed", "stuck", "escalated at levels", "cases row")
    engine_problems = [
        text for text in check.problems
        + [f"{r.complaint_id}: {r.error}" for r in agent_errors] + worker.unexpected_exits
        + [f"{w} does not replay: {fail.describe()}" for w, fail in replay_failures.items() if fail.cause != "sdk"]
        if not any(text.startswith(f"{cid}: ") and text.split(": ", 1)[1].startswith(follows) for cid in nondeterministic)
    ]
    engine_failures = len(engine_problems) + outage_failed + ended_badly
    passed = failures == 0
    status = 0 if passed else (EXIT_NONDETERMINISM_ONLY if engine_failures == 0 and nondeterministic else 1)
    return Verdict(passed, status, agent_errors, stuck, failed_live, nondeterministic, engine_problems, engine_failures,
                   deferred_queries(worker.log_path))


def count_rows(f: Finished, v: Verdict, runtime: float, load: list[float] | None) -> list[tuple[str, Any]]:
    check, worker, chaos, outage = f.check, f.worker, f.chaos, f.chaos.outage
    no_outage = chaos.plan.outage_start is None
    return [
        ("cases", check.cases),
        ("completed (workflow result)", check.completed),
        ("closed, resolved (cases row)", check.closed_snapshots),
        ("worker kills (kill -9)", worker.kills),
        ("worker restarts", chaos.worker_restarts),
        ("worker exits not caused by the drill", len(worker.unexpected_exits)),
        ("dev server restarts", chaos.server_restarts),
        ("DB outage (s)", outage.seconds),
        ("worker up through the outage", "yes" if outage.worker_alive_after else ("n/a" if no_outage else "NO")),
        ("activities retrying in the outage", f"{outage.retrying_activities} in {outage.retrying_cases} cases, "
                                              f"attempts up to {outage.max_attempt}, backoff {backoffs_text(outage.backoff_seconds)}"),
        ("failed attempts in the worker's log", f"{outage.failed_attempts} by {outage.failing_activities} (case, activity), "
                                                f"{gaps_text(outage.retry_gaps_seconds)} apart"),
        ("first write after the outage (s)", outage.first_write_after_seconds),
        ("events (case_events)", check.events),
        ("events (timeline queries)", check.timeline_events),
        ("escalations (escalated events)", check.escalations),
        ("notifications (outbox rows)", check.notifications),
        ("notifications delivered / dead / unsettled",
         f"{check.delivery.delivered} / {check.delivery.dead} / {check.delivery.unsettled} of {check.delivery.notifications}"),
        ("webhooks received (distinct keys)", f"{check.delivery.webhook_requests} ({check.delivery.webhook_keys})"),
        ("emails received (distinct Message-IDs)", f"{check.delivery.emails} ({check.delivery.email_keys})"),
        ("promises escalated L1+L2 before kept", f"{check.promise_escalated_l1_l2}/{check.cases}"),
        ("client calls retried", sum(r.retries for r in f.runs)),
        ("queries deferred by the worker's guard", v.deferred_queries),
        ("duplicates", check.duplicates),
        ("lost", check.lost),
        ("gaps", check.gaps),
        ("mismatched", check.mismatched),
        ("snapshot problems", check.snapshot_problems),
        ("stuck cases (workflow task failing)", len(v.stuck)),
        ("histories that do not replay", f"{len(f.replay_failures)} of {len(f.replayed)}"),
        ("stuck although the history replays", len(v.failed_live)),
        ("agent errors", len(v.agent_errors)),
        ("runtime (s)", f"{runtime:.0f} (cases {f.cases_seconds:.0f})"),
        ("load average at the end (1, 5, 15 min)", load_text(load)),
    ]


def table(rows: list[tuple[str, Any]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name.ljust(width)}  {value}" for name, value in rows)


def print_report(f: Finished, v: Verdict, rows: list[tuple[str, Any]]) -> None:
    check, worker, replay_failures = f.check, f.worker, f.replay_failures
    print(f"\nCrash drill {f.run_id} (seed {f.opts.seed}): {f.opts.cases} cases on the {POLICY} policy; "
          f"PostgreSQL {f.postgres}\n")
    print("Chaos:")
    for incident in f.chaos.incidents:
        print(f"  {incident.at:6.1f}s  {incident.what} [{incident.in_flight} in flight]")
    print("\nCounts:")
    print(table(rows))
    print("\nEscalations by clock and level: " + ", ".join(f"{k} {n}" for k, n in check.escalations_by_level.items()))
    opened = Counter(f"{r.via}:{r.opened_as}" for r in f.runs)
    print("Cases: " + ", ".join(f"{k} {n}" for k, n in sorted(opened.items()))
          + f"; asked for info {sum(r.asked_for_info for r in f.runs)}; "
          + f"first resolution rejected {sum(r.rejected_first_resolution for r in f.runs)}; "
          + f"feedback {Counter(r.feedback.split()[0] for r in f.runs if r.feedback)}")
    if f.agents.retry_kinds:
        print("Client calls retried, by error: " + ", ".join(f"{k} {n}" for k, n in f.agents.retry_kinds.most_common()))
    if check.problems or v.agent_errors or worker.unexpected_exits or replay_failures:
        print("\nProblems:")
        for text in check.problems[:40]:
            print(f"  - {text}")
        if len(check.problems) > 40:
            print(f"  ... and {len(check.problems) - 40} more")
        for run in v.agent_errors[:20]:
            print(f"  - {run.complaint_id}: {run.error}")
        for text in worker.unexpected_exits:
            print(f"  - worker {text}")
        for workflow_id, failure in sorted(replay_failures.items()):
            print(f"  - {workflow_id} does not replay: {failure.describe()}")
    if v.nondeterministic:
        print(f"\nTemporal SDK: {len(v.nondeterministic)} cases hit nondeterminism errors that are not the workflow "
              "code's (their histories do not replay because the worker got a workflow task's jobs in other "
              "activations, or at another workflow.now(), than a replay does; or the worker failed on a history "
              f"that replays): {', '.join(v.nondeterministic)}. "
              + ("nothing else went wrong. " if v.engine_failures == 0 else "")
              + "See README, 'Crash drills'. Histories: " + str(f.work_dir / "histories-that-do-not-replay"))
    print(f"\nRESULT: {'PASS' if v.passed else 'FAIL'}" + ("" if v.passed else f" (logs kept in {f.work_dir})"))


def summary(f: Finished, v: Verdict, runtime: float, load: list[float] | None) -> dict[str, Any]:
    check, worker, chaos, outage = f.check, f.worker, f.chaos, f.chaos.outage
    return {
        "passed": v.passed,
        "exit_status": v.status,
        "nondeterministic_cases": v.nondeterministic,
        "engine_problems": v.engine_problems,
        "runtime_seconds": round(runtime, 1),
        "load_average_end": load,
        "incidents": [asdict(i) for i in chaos.incidents],
        "counts": {
            "cases": check.cases, "completed": check.completed, "closed_snapshots": check.closed_snapshots,
            "kills": worker.kills, "worker_restarts": chaos.worker_restarts,
            "unexpected_worker_exits": len(worker.unexpected_exits), "server_restarts": chaos.server_restarts,
            "db_outage_seconds": outage.seconds, "events": check.events, "timeline_events": check.timeline_events,
            "escalations": check.escalations, "notifications": check.notifications,
            "delivery": asdict(check.delivery),
            "promise_escalated_l1_l2": check.promise_escalated_l1_l2,
            "duplicates": check.duplicates, "lost": check.lost, "gaps": check.gaps,
            "mismatched": check.mismatched, "snapshot_problems": check.snapshot_problems,
            "agent_errors": len(v.agent_errors), "client_retries": sum(r.retries for r in f.runs),
            "deferred_queries": v.deferred_queries,
            "stuck": len(v.stuck), "replay_failures": len(f.replay_failures), "stuck_although_replays": len(v.failed_live),
        },
        "outage": asdict(outage),
        "escalations_by_level": check.escalations_by_level,
        "problems": check.problems + [f"{r.complaint_id}: {r.error}" for r in v.agent_errors] + worker.unexpected_exits
        + [f"{w} does not replay: {fail.describe()}" for w, fail in sorted(f.replay_failures.items())],
    }


def report(f: Finished, runtime: float) -> tuple[Verdict, dict[str, Any]]:
    """Print the report; return the verdict and the summary."""
    verdict = judge(f)
    load = load_average()
    print_report(f, verdict, count_rows(f, verdict, runtime, load))
    return verdict, summary(f, verdict, runtime, load)
