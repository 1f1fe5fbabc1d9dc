"""How the case calls its database activities: retried until they succeed, each attempt bounded."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

# Activities retry until they succeed: a case never loses an event because the
# database was briefly away. The backoff is capped so recovery is quick.
DB_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
# A batch write takes milliseconds; a worker that dies mid-write is noticed after this and the write retried.
DB_TIMEOUT = timedelta(seconds=10)
