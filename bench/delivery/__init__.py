"""Delivery: how soon an escalation reaches people when many fall due at once (issue 20). The `delivery`
section of `python -m bench` (`make bench ARGS='--only delivery'`, or `make bench-delivery`).

For each N of --delivery-sizes (100 and 1,000), on the benchmark's own
servers: an SMTP sink and a signature-checking webhook receiver start in the
benchmark's process (tools/harness/delivery_witness.py), and the escalation
benchmark's engine side runs (bench/escalations/engine_side.py: N `demo`
cases, each with a promise due at ONE shared instant T) with a worker whose
environment names the sink (SMTP_URL). While the cases are set up no agent has
a channel (the demo clocks escalate every few seconds then, and those rows stay
queued); once the promises are made, before the promise clocks' level 1 (T - 5 s),
every agent gets an address and a webhook_url on the witness (the worker reads
them per notification), so levels 1, 2 and 3 of the promises are all delivered:
the burst's load. Measured, for each case's level-2
escalation of its promise (one notification row, due_at = T, to the owner's
supervisor):

  escalation lateness   created_at - due_at of the row
  email arrival         the sink accepted the message (Message-ID <ntf-<id>.) - due_at
  webhook arrival       the receiver answered the signed request (webhook-id ntf-<id>) 2xx - due_at
  delivery share        arrival - created_at, per channel

p50, p99 and max of each (nearest rank), the attempts the worker recorded,
how many routes the first try at commit delivered (activities/first_try.py), the
durable path's timing (from the histories of up to 100 of the DeliveryWorkflows:
row commit to workflow start, and the queue waits of its workflow and activity
tasks until the first `deliver`), and the goal: p99 of the delivery share at most 2 s on both channels (the
delivery within 2 s of the escalation's own lateness), every notification
arrived. The roster is put back afterwards.

Modules: figures (the percentiles and the goal), arrivals (waiting for the
sink and the receiver, the attempts), breakdown (the histories), section (one
run per N), report (the table's rows and the goal line).
"""
