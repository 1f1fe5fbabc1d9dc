"""Escalation lateness: how late the engine's escalations land when many fall due at once (issue 3).

    .venv/bin/python -m bench.escalations [--cases N]      (or `make bench-escalations`)

A script that prints figures, never a timed test. One run, on the dev server
and the real PostgreSQL (the embedded defaults through running_stack, or the
servers TEMPORAL_ADDRESS / DATABASE_URL name), in two parts:

engine  A worker subprocess (bench/worker_process.py: worker.build_worker, a
        pool of --pool-size connections, so as many concurrent activities) on
        a task queue of its own. The demo roster is loaded; N cases with the
        `demo` policy are opened (--concurrency at a time), each accepted and
        contacted by its owner (which stops the acknowledge and first-response
        clocks; customer_update restarts at the contact and resolution runs
        from receipt, both in seconds under `demo`), then every case gets
        `make_promise` with ONE shared absolute `due_at` T. Measured: level 2
        of each case's `promise:P1` clock, due at T exactly; its row in
        `notifications` (one per escalation, written by record_case_events in
        the events' transaction) carries `due_at` (T) and `created_at`
        (clock_timestamp() at the insert). T is placed after the promise phase
        and where no other clock of these cases reaches a level or its deadline
        from T - warn_before - 3 s to T + --window (computed from the clocks in
        the cases' snapshots in PostgreSQL), deferred up to 300 s for that.
        The promise's own level 1 (T - 5 s under `demo`) and level 3 (T + 15 s)
        are part of the engine's load and are reported beside the table.
bare    The same with the least Temporal can do: bench/bare.py SleepThenNoop
        sleeps on one timer until its own shared instant T2, then one activity
        inserts a row (created_at clock_timestamp()) into
        bench_bare_escalations in the same PostgreSQL. Own worker subprocess,
        own task queue, the same pool size, max_concurrent_activities,
        max_cached_workflows and concurrency of starts.

Figures, per side:
  lateness            created_at - due_at of each row (ms): p50, p99, max
                      (nearest-rank percentiles over the N rows)
  escalations/s       N / (last created_at - due instant): the rate at which
                      the burst of N escalations due at one instant is drained
  worker peak RSS     VmHWM of the worker subprocess (/proc/<pid>/status), read
                      after the last row: its peak resident memory over its
                      whole life (start-up, setup of the N cases, the burst)
Beside them (JSON and the notes under the table): CPU seconds of the worker
and of the local Temporal dev server, and how busy the whole machine was, per
phase, from /proc; so a run says where the time went.

Prints a table (metric | engine | bare Temporal | ratio engine/bare) and
writes bench/results-escalations.json. Progress goes to stderr. Afterwards the
benchmark's workflows are terminated and deleted, and their rows removed from
PostgreSQL, and the worker logs (data/bench/) deleted (--keep keeps all of
them; the logs are kept too when a run is incomplete). Exit status 0 when every escalation of both
sides was seen, 1 otherwise, 130 on Ctrl-C.

The modules, in the order of a run: plan (what is measured, and the shared
due instant placed in a quiet window), context (one run: its servers, options,
names, workers), engine_side and bare_side (one side each), figures (lateness
and drain rate of a side's rows), cleanup (the workflows and rows a run
leaves), report (the table and its notes), command (the arguments, both sides,
the JSON).
"""
