"""How the workflows call their bookkeeping activities (status, targets, a failure's outcome, the
audit, the summary, the webhook's hand-off): each is one short transaction, so it gets a short
timeout and is retried until PostgreSQL is back, however long that takes."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

BOOKKEEPING_TIMEOUT = timedelta(seconds=30)
BOOKKEEPING_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
