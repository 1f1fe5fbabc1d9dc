"""The checks after the run: PostgreSQL (the system of record) on its own for every case, then against
each workflow's `timeline` query: gaps, duplicates, lost and mismatched events, the outbox, the snapshot."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from complaint_client import ComplaintClient
from drills.agents import Agents, CaseRun, DrillError
from drills.delivery import DeliveryCheck
from drills.replay import ReplayFailure
from schemas.state import TimelineEvent
from tools.harness.progress import Progress
from workflows.start_input import workflow_id_for


@dataclass
class Check:
    cases: int = 0
    completed: int = 0
    resolved: int = 0
    closed_snapshots: int = 0
    events: int = 0
    timeline_events: int = 0
    escalations: int = 0
    notifications: int = 0
    promise_escalated_l1_l2: int = 0
    escalations_by_level: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    duplicates: int = 0
    lost: int = 0
    mismatched: int = 0
    snapshot_problems: int = 0
    problems: list[str] = field(default_factory=list)
    # Whether every escalation reached the SMTP server and the webhook receiver (drills/delivery.py).
    delivery: DeliveryCheck = field(default_factory=DeliveryCheck)

    def problem(self, text: str) -> None:
        self.problems.append(text)


async def verify(
    runs: list[CaseRun], engine: ComplaintClient, pool: asyncpg.Pool, agents: Agents,
    replay_failures: dict[str, ReplayFailure], progress: Progress,
) -> Check:
    """PostgreSQL (the system of record) checked on its own for every case, then against each timeline query."""
    check = Check(cases=len(runs))
    ids = [r.complaint_id for r in runs]
    rows = await pool.fetch(
        "SELECT complaint_id, seq, kind, actor, CASE WHEN kind = 'escalated' THEN data END AS data "
        "FROM case_events WHERE complaint_id = ANY($1::text[]) ORDER BY complaint_id, seq",
        ids)
    notes = await pool.fetch(
        "SELECT complaint_id, clock, level, occurrence, event_seq FROM notifications WHERE complaint_id = ANY($1::text[])", ids)
    snapshots = {r["complaint_id"]: r for r in await pool.fetch(
        "SELECT complaint_id, status, outcome, last_seq FROM cases WHERE complaint_id = ANY($1::text[])", ids)}
    stored: dict[str, list[asyncpg.Record]] = {cid: [] for cid in ids}
    for row in rows:
        stored[row["complaint_id"]].append(row)
    outbox: dict[str, list[asyncpg.Record]] = {cid: [] for cid in ids}
    for row in notes:
        outbox[row["complaint_id"]].append(row)
    check.events = len(rows)
    check.notifications = len(notes)
    levels: Counter[str] = Counter()

    async def timeline_of(run: CaseRun) -> list[TimelineEvent]:
        # The workflow's own `timeline` query (not ComplaintClient.timeline, which may fill in from PostgreSQL).
        try:
            if run.stuck:
                raise DrillError(f"no timeline: {run.stuck}")
            if workflow_id_for(run.complaint_id) in replay_failures:
                raise DrillError("no timeline: a query replays the history, which does not replay")
            handle = engine.handle(run.complaint_id)
            query = agents.persist(run, "timeline", lambda: handle.query("timeline", result_type=list[TimelineEvent]))
            return await asyncio.wait_for(query, 120)
        finally:
            progress.done += 1

    progress.set("querying timelines", len(runs))
    timelines = await asyncio.gather(*(timeline_of(r) for r in runs), return_exceptions=True)
    for run, timeline in zip(runs, timelines):
        cid = run.complaint_id
        if run.outcome is not None:
            check.completed += 1
            if run.outcome.outcome == "resolved":
                check.resolved += 1
            else:
                check.problem(f"{cid}: outcome {run.outcome.outcome}, expected resolved")
        else:
            check.problem(f"{cid}: did not complete ({run.error or 'no result'})")

        # case_events alone: seqs 1..N, each once.
        seqs = [r["seq"] for r in stored[cid]]
        check.duplicates += len(seqs) - len(set(seqs))  # the primary key forbids it; counted anyway
        last_stored = max(seqs, default=0)
        missing = sorted(set(range(1, last_stored + 1)) - set(seqs))
        check.gaps += len(missing)
        if missing:
            check.problem(f"{cid}: case_events lacks seqs {missing[:10]}")

        # Escalations in case_events against the outbox: each (clock, level, occurrence) fired once,
        # with exactly one notifications row pointing at its event, and no row without its event.
        escalated = [r for r in stored[cid] if r["kind"] == "escalated"]
        check.escalations += len(escalated)

        def key_of(data: dict[str, Any]) -> tuple[Any, Any, Any]:
            return (data.get("clock"), data.get("level"), data.get("occurrence", 1))

        fired = Counter(key_of(r["data"]) for r in escalated)
        for key, count in fired.items():
            if count > 1:
                check.duplicates += count - 1
                check.problem(f"{cid}: escalation {key} fired {count} times")
        rows_by_key = Counter((r["clock"], r["level"], r["occurrence"]) for r in outbox[cid])
        for key, count in rows_by_key.items():
            if count > 1:
                check.duplicates += count - 1
                check.problem(f"{cid}: escalation {key} has {count} notifications rows")
        seq_of = {key_of(r["data"]): r["seq"] for r in escalated}
        for key, seq in seq_of.items():
            if key not in rows_by_key:
                check.lost += 1
                check.problem(f"{cid}: escalation {key} (seq {seq}) has no notifications row")
        for row in outbox[cid]:
            key = (row["clock"], row["level"], row["occurrence"])
            if seq_of.get(key) != row["event_seq"]:
                check.mismatched += 1
                check.problem(f"{cid}: notifications row {key} (event_seq {row['event_seq']}) has no such escalated event")
        for r in escalated:
            clock = str(r["data"].get("clock"))
            levels[f"{'promise' if clock.startswith('promise:') else clock} L{r['data'].get('level')}"] += 1
        # The drill's promise escalated at levels 1 and 2 before it was kept.
        kept_at = next((r["seq"] for r in stored[cid] if r["kind"] == "promise_kept"), None)
        promise_levels = {r["data"].get("level") for r in escalated
                          if r["data"].get("clock") == f"promise:{run.promise_id}" and kept_at is not None and r["seq"] < kept_at}
        if {1, 2} <= promise_levels:
            check.promise_escalated_l1_l2 += 1
        else:
            check.problem(f"{cid}: promise {run.promise_id} escalated at levels {sorted(promise_levels)} before being kept")

        # The workflow's timeline against case_events: lost = in the timeline, not stored.
        last = last_stored
        if isinstance(timeline, BaseException):
            check.problem(f"{cid}: timeline query failed: {timeline}")
        else:
            by_seq = {r["seq"]: r for r in stored[cid]}
            timeline_seqs = [e.seq for e in timeline]
            # A case that continued as new holds the carried tail only (first seq > 1); the rest is in case_events.
            first = timeline_seqs[0] if timeline_seqs else 1
            last = first + len(timeline) - 1
            check.timeline_events += last if timeline else 0
            if timeline_seqs != list(range(first, last + 1)):
                check.problem(f"{cid}: the timeline's seqs are not {first}..{last}")
                check.duplicates += len(timeline_seqs) - len(set(timeline_seqs))
            for event in timeline:
                row = by_seq.get(event.seq)
                if row is None:
                    check.lost += 1
                    check.problem(f"{cid}: event {event.seq} ({event.kind}) is in the timeline but not in case_events")
                elif (row["kind"], row["actor"]) != (event.kind, event.actor):
                    check.mismatched += 1
                    check.problem(f"{cid}: seq {event.seq} stored as {row['kind']}/{row['actor']}, "
                                  f"the timeline says {event.kind}/{event.actor}")
            extra = sorted(seq for seq in set(by_seq) - set(timeline_seqs) if seq >= first)
            if extra:
                check.mismatched += len(extra)
                check.problem(f"{cid}: case_events has seqs {extra[:10]} the timeline lacks")

        # The snapshot: closed, with the final outcome, and not behind the events.
        snap = snapshots.get(cid)
        expected_outcome = run.outcome.outcome if run.outcome else "resolved"
        if snap is None or snap["status"] != "closed" or snap["outcome"] != expected_outcome or snap["last_seq"] != last:
            check.snapshot_problems += 1
            what = "missing" if snap is None else f"status {snap['status']}, outcome {snap['outcome']}, last_seq {snap['last_seq']}"
            check.problem(f"{cid}: cases row {what}; expected closed, {expected_outcome}, last_seq {last}")
        else:
            check.closed_snapshots += 1
    check.escalations_by_level = dict(sorted(levels.items()))
    return check
