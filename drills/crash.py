"""Crash drills (issue 5): cases in flight survive kill -9 of the worker, a dev server restart and a database outage.

    .venv/bin/python -m drills.crash [--cases 50] [--seed N] [--kills 4] [--outage 30]

One run, on servers of its own: a Temporal dev server with a persistent
`--db-filename` in a temporary directory, on free ports (TEMPORAL_ADDRESS is
ignored: the drill must be able to restart the server), and PostgreSQL: the
embedded one in the same directory, or, when DATABASE_URL is set, a scratch
database created on that server and dropped afterwards. Migrations are applied
and the demo roster loaded. The worker (drills/worker_process.py: the
production worker.build_worker) runs as a subprocess and reaches PostgreSQL
only through a TCP proxy in this process (drills/proxy.py), so the database can
be made unreachable without touching the real server.

--cases complaints on the `demo` policy (clocks in seconds) are opened at once,
half through the problem door (ComplaintClient.start, a customer of their own
each) and half directly (start_case), and worked concurrently by simulated
agents through the typed client: accept, contact the customer, sometimes ask
for and receive information, promise something due in --promise-min..max
seconds, keep working the case (notes, contacts) until the promise has
escalated (level 1 to the owner, level 2 to the supervisor), keep it, propose
a resolution (sometimes rejected once by the customer), have the customer
confirm it, sometimes rate the handling; the case closes and the workflow
completes when the policy's 20 s feedback window ends. Every action carries a
request_id, and an agent retries an action (same request id, so at most once)
for as long as Temporal or the worker is away.

Meanwhile, at moments drawn from --seed:
  worker kills   --kills times: kill -9 of the worker process, then a restart
                 after 0.5-4 s; spread before, between and after the others
  server restart the dev server is stopped (SIGTERM, or SIGKILL with
                 --server-stop kill) and started again on the same port and
                 database file
  DB outage      --outage seconds: the proxy resets every open connection and
                 every new one; the worker must stay up (same pid, alive) while
                 its activities retry with backoff (the pending activities'
                 attempts and backoff intervals are read from Temporal before
                 the database comes back)

Then each case must complete (its workflow result, within --timeout; a case
whose workflow task keeps failing is reported as stuck, with the failure, as
soon as it is seen), and PostgreSQL is checked, on its own and against each
workflow's `timeline` query:
  gaps        seqs missing from case_events between 1 and the last one
  duplicates  a seq stored twice, an escalation (clock, level, occurrence)
              fired twice, or notified twice in the outbox
  lost        timeline events missing from case_events, and escalations
              without their notifications row
  mismatched  a stored event whose kind or actor differs from the timeline's at
              that seq, a stored event the timeline lacks, or a notifications
              row without its escalated event
  snapshot    the cases row not closed, with another outcome, or behind the
              events
and every case's promise must have escalated at levels 1 and 2 before it was
kept. Finally every case's, door's and delivery's history is replayed with this checkout's
code (temporalio's Replayer): a history that does not replay is a case no
worker could take back after a restart. The worker logs each workflow
activation (drills/worker_process.py), so each such failure is classified by
comparing what ran live with the replay: `sdk` when the SDK gave the worker the
same jobs in other activations, or at another workflow.now(), than it gives a
replay (the workflow code is not at fault; README, "Crash drills"), `workflow`
when the same jobs at the same time gave other commands.

Prints the chaos log and a table of counts, ending with the wall time and the
load average; --json PATH writes them too. Progress goes to stderr: a bar per
phase on a terminal, a plain line now and then elsewhere.
Exit status 0 when every case completed and every check is zero; 3 when the
only failures are histories that do not replay for the SDK's reason above (and
what follows from them: no timeline, stuck); 1 otherwise; 130 on Ctrl-C.
Every process and server it started is stopped, also on failure; the work
directory (servers' files, the worker's log, histories that do not replay) is
deleted after a passing run, unless --keep or --work-dir.
"""

from __future__ import annotations

import argparse
import logging
import random
from pathlib import Path

from config import load_settings
from drills.plan import Options
from drills.run import drill
from logs import configure_logging
from tools.harness.process import run_to_exit


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m drills.crash", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--cases", type=int, default=50, help="cases in flight (default 50)")
    parser.add_argument("--seed", type=int, help="seed of the schedule and the agents' choices (default: random, printed)")
    parser.add_argument("--kills", type=int, default=4, help="kill -9 of the worker, each followed by a restart (default 4)")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds PostgreSQL is unreachable (default 30; 0: no outage)")
    parser.add_argument("--server-restart", action=argparse.BooleanOptionalAction, default=True,
                        help="restart the dev server once mid-flight (default: yes)")
    parser.add_argument("--server-stop", choices=("term", "kill"), default="term",
                        help="how the dev server is stopped for its restart (default term: SIGTERM)")
    parser.add_argument("--promise-min", type=float, default=25.0, help="earliest promise due time, s after making it (default 25)")
    parser.add_argument("--promise-max", type=float, default=55.0, help="latest promise due time (default 55)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for every case to complete (default 600)")
    parser.add_argument("--pool-size", type=int, default=10, help="the worker's database pool = its concurrent activities (default 10)")
    parser.add_argument("--work-dir", type=Path, help="where servers keep their files and the worker its log (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory after a passing run")
    parser.add_argument("--json", dest="json_path", type=Path, help="also write the counts as JSON here")
    args = parser.parse_args(argv)
    if args.cases < 1 or args.kills < 0 or args.outage < 0 or args.pool_size < 1:
        parser.error("--cases and --pool-size must be at least 1, --kills and --outage at least 0")
    if not 8 <= args.promise_min <= args.promise_max:
        parser.error("need 8 <= --promise-min <= --promise-max (the demo policy warns 5 s before a promise is due)")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    return Options(
        cases=args.cases, seed=seed, kills=args.kills, outage=args.outage, server_restart=args.server_restart,
        server_stop=args.server_stop, promise_min=args.promise_min, promise_max=args.promise_max,
        timeout=args.timeout, pool_size=args.pool_size, work_dir=args.work_dir, keep=args.keep, json_path=args.json_path,
    )


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    configure_logging(load_settings().log_format, level="ERROR")
    # A client call abandoned by its attempt timeout (then retried) leaves temporalio futures whose
    # errors nobody reads: asyncio would log each one.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    run_to_exit(lambda: drill(opts))


if __name__ == "__main__":
    main()
