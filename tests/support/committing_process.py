"""A process that commits escalations the way a worker's record_case_events does, with the first try at
commit, and then waits to be killed: `python -m tests.support.committing_process`.

    DRILL_DATABASE_URL=URL python -m tests.support.committing_process --address HOST:PORT --namespace NS \
        --task-queue Q --complaint-id C --owner O --escalations 5

The delivery tests kill it (kill -9) while its first tries are on the wire. No worker polls Q meanwhile, so
the first tries are the only senders before the kill. It prints `ready` once connected (tools/harness/worker.py).
"""

from __future__ import annotations

import asyncio
import os

from activities import CaseActivities, create_pool
from activities.delivery_starter import DeliveryStarter
from activities.first_try import FirstTry
from delivery.settings import delivery_settings
from logs import configure_logging
from stack.client import connect_client
from tests.support.activity_io import run
from tests.support.delivery import escalation_record
from tools.harness.process import run_to_exit
from tools.harness.worker_entry import worker_arguments


async def commit_and_wait(args) -> int:  # type: ignore[no-untyped-def]
    pool = await create_pool(os.environ["DRILL_DATABASE_URL"], max_size=4)
    client = await connect_client(args.address, args.namespace)
    first_try = FirstTry(pool, delivery_settings())
    acts = CaseActivities(pool, DeliveryStarter(client, args.task_queue, first_try))
    print("ready", flush=True)
    await run(acts.record_case_events, escalation_record(args.complaint_id, args.owner, args.escalations))
    await asyncio.Event().wait()  # until killed
    return 0


def main() -> None:
    parser = worker_arguments("committing_process", "commit escalations with a first try, then wait to be killed")
    parser.add_argument("--complaint-id", required=True)
    parser.add_argument("--owner", required=True)
    parser.add_argument("--escalations", type=int, default=5)
    args = parser.parse_args()
    configure_logging("json")
    run_to_exit(lambda: commit_and_wait(args), failed="committing process failed")


if __name__ == "__main__":
    main()
