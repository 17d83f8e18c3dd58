"""The retention Schedule: a Temporal Schedule that starts `RetentionWorkflow` once a day.

Created by `bulkops temporal-setup` (and `bulkops dev`); running it again brings an existing
schedule up to date instead of failing, so it is safe on every deploy.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from bulkops.settings import Settings
from workflows.contracts import RETENTION_WORKFLOW, RetentionInput


def retention_schedule_id(settings: Settings) -> str:
    return f"bulkops-retention-{settings.task_queue}"


def retention_schedule(settings: Settings) -> Schedule:
    schedule_id = retention_schedule_id(settings)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RETENTION_WORKFLOW,
            RetentionInput(batch_rows=settings.retention_batch_rows),
            id=schedule_id,
            task_queue=settings.task_queue,
            static_summary=f"retention: rows of operations ended > {settings.retention_days} days ago",
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(hours=settings.retention_every_hours))]
        ),
        # A sweep still running when the next is due just finishes: the next one finds what is left.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_retention_schedule(client: Client, settings: Settings) -> bool:
    """Create the schedule or update the existing one; True when it was created now."""
    schedule = retention_schedule(settings)
    try:
        await client.create_schedule(retention_schedule_id(settings), schedule)
        return True
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(retention_schedule_id(settings)).update(replace)
        return False
