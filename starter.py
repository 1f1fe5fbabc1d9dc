"""The complaints command line: `python starter.py <command>` (see `--help`).

A thin layer over complaint_client.ComplaintClient: every command validates
its input against the models of schemas/ before it connects, then makes one
call on the client and prints the answer with complaint_client.render.

    python starter.py start --file intake.json
    python starter.py start --complaint-id C1 --customer-id cust-1 --customer-name "Ana Lima" \\
        --channel email --category billing --severity high --summary "Charged twice"
    python starter.py accept_ownership C1 --actor a.patel
    python starter.py make_promise C1 --actor a.patel --description "Refund" --due-at +2d
    python starter.py add_note C1 --json '{"actor": "a.patel", "text": "Called the bank"}' --signal
    python starter.py show C1 [--json]
    python starter.py list --owner a.patel --min-escalation 2
    python starter.py roster load roster/demo.json
    python starter.py roster list
    python starter.py notifications list --recipient s.lindqvist
    python starter.py notifications ack 12 13
    python starter.py codec-server --port 8081

Settings come from the environment (config.py): TEMPORAL_ADDRESS (default the
embedded dev server on 127.0.0.1:7233; the CLI never starts one),
TEMPORAL_NAMESPACE, COMPLAINTS_TASK_QUEUE, DATABASE_URL (roster and
notifications commands; default the embedded PostgreSQL in COMPLAINTS_DATA_DIR),
COMPLAINTS_ENCRYPTION_KEYS and the TLS / API-key variables (README, "Customer
data and security"): the CLI reads and writes cases with the worker's keys.

Exit status: 0 done; 2 bad input or an action the engine rejected; 1 the
infrastructure (Temporal, a worker, PostgreSQL) is missing or failed. Every
error is one line on stderr starting with "error:".
"""

from __future__ import annotations

from typing import Sequence

import cli
from stack.process import exit_for_real

# tests and embedding code await starter.amain in their own event loop.
from cli import amain

__all__ = ["amain", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command to completion in a new event loop; returns the exit status (never exits)."""
    return cli.main(argv)


if __name__ == "__main__":
    cli.configure_cli_logging()
    exit_for_real(main())
