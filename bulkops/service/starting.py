"""Starting a new operation's workflow from its committed row, idempotently by its id; and, from the
worker's sweep, the workflow of a committed row whose start went unconfirmed."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio.client import Client
from temporalio.common import (
    Priority,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from bulkops.domain.model import WAITING_STATUSES, fairness_key, operation_workflow_id
from bulkops.domain.records import OperationRecord
from bulkops.service import gates
from bulkops.settings import Settings
from bulkops.store.operations import operation_by_id
from workflows.contracts import BULK_OPERATION_WORKFLOW, BulkOperationInput
from workflows.search_attributes import OPERATION_STATUS, OPERATION_TYPE, TENANT_ID

log = logging.getLogger(__name__)
# A row without a workflow is a start in flight for up to two start timeouts (the start, then the
# question whether it took); after this many it is an unconfirmed start.
UNCONFIRMED_AFTER = 4


async def start_workflow(client: Client, settings: Settings, row: OperationRecord) -> None:
    """Start the operation's workflow, idempotently by its id (a second start finds the first)."""
    op_type = row.operation_type
    inp = BulkOperationInput(
        operation_id=row.id,
        tenant_id=row.tenant_id,
        operation_type=op_type,
        parameters=row.parameters,
        max_concurrency=row.max_concurrency,
        failure_threshold=row.failure_threshold,
        notify_url=row.notify_url,
        webhook_task_queue=settings.webhook_task_queue,
        initiated_by=row.initiated_by,
        created_at=row.created_at,
        max_events_per_run=settings.max_events_per_run,
        activity_max_attempts=settings.activity_max_attempts,
        activity_timeout_s=settings.activity_timeout_s,
        local_activities=settings.local_activities,
        **gates.gate_input(row),
    )
    count = f"{row.total_count:,} orders" if row.total_count else "a filter selection"
    details = json.dumps(
        {
            "operation_id": str(row.id),
            "tenant": row.tenant_id,
            "type": op_type.value,
            "initiated_by": row.initiated_by,
            "parameters": row.parameters,
            "selection": {k: v for k, v in row.selection.items() if k != "filter"} or "filter",
            "max_concurrency": row.max_concurrency,
            "retry_of": str(row.retry_of) if row.retry_of else None,
        },
        indent=2,
    )
    try:
        # Bounded: with Temporal away the request answers 503 in seconds, not after the client's own
        # retries have run out (the caller repeats it with its Idempotency-Key). The client retries
        # while Temporal is away, so the whole call is bounded, not only each attempt.
        async with asyncio.timeout(settings.start_timeout_s):
            await client.start_workflow(
                BULK_OPERATION_WORKFLOW,
                inp,
                id=operation_workflow_id(row.id),
                task_queue=settings.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                # Never a second run: a workflow that ended (or was terminated) stays ended.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(TENANT_ID, row.tenant_id),
                        SearchAttributePair(OPERATION_TYPE, op_type.value),
                        SearchAttributePair(OPERATION_STATUS, row.status.value),
                    ]
                ),
                static_summary=f"{op_type.value} · {count} · tenant {row.tenant_id}",
                static_details=f"```json\n{details}\n```",
                # Its workflow tasks and bookkeeping activities are dispatched fairly across tenants.
                priority=Priority(fairness_key=fairness_key(row.tenant_id)),
                rpc_timeout=timedelta(seconds=settings.start_timeout_s),
            )
    except WorkflowAlreadyStartedError:
        return  # it ran already (and perhaps ended): nothing to heal


async def start_unconfirmed(
    sessionmaker: async_sessionmaker, client: Client, settings: Settings, operation_id: uuid.UUID
) -> bool:
    """Start the workflow of a committed operation that has none, once it is older than a start may
    take: its API process was killed between commit and start, or Temporal could not say whether it had
    started it (503) and the request was not repeated. Every committed operation runs, once; a repeat
    of the request with its Idempotency-Key finds it. Returns whether it started one."""
    async with sessionmaker() as session:
        row = await operation_by_id(session, operation_id)
    grace = timedelta(seconds=UNCONFIRMED_AFTER * settings.start_timeout_s)
    if row is None or row.ended or row.created_at > datetime.now(UTC) - grace:
        return False
    if row.status not in WAITING_STATUSES or row.started_at is not None:
        # Its workflow ran, and its history is gone (deleted, or another cluster): starting it again
        # would run what an operator may have stopped. Left for a person to look at.
        log.warning(
            "operation %s tenant %s: %s but its workflow is gone; not started again",
            row.id,
            row.tenant_id,
            row.status.value,
        )
        return False
    await start_workflow(client, settings, row)
    log.warning("operation %s tenant %s: its start was unconfirmed; started now", row.id, row.tenant_id)
    return True
