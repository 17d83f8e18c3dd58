"""`RetentionWorkflow`: one sweep of the retention policy, started by a Temporal Schedule.

Calls `purge_expired` (a bounded batch per call) until nothing expired is left, and continues as new
if a very long sweep fills its history. Deterministic code only.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from activities.contracts import PURGE_EXPIRED, PurgeInput, PurgeResult
from workflows.contracts import RETENTION_WORKFLOW, RetentionInput

HISTORY_LIMIT = 2_000


@workflow.defn(name=RETENTION_WORKFLOW, sandboxed=False)
class RetentionWorkflow:
    @workflow.run
    async def run(self, inp: RetentionInput) -> RetentionInput:
        total = inp.model_copy()
        while True:
            batch = await workflow.execute_activity(
                PURGE_EXPIRED,
                PurgeInput(batch_rows=inp.batch_rows),
                result_type=PurgeResult,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            )
            total.operations_purged += batch.operations_purged
            total.targets_deleted += batch.targets_deleted
            total.items_deleted += batch.items_deleted
            if batch.done:
                workflow.logger.info("retention sweep done: %s", total)
                return total
            if workflow.info().get_current_history_length() > HISTORY_LIMIT:
                workflow.continue_as_new(total)
