"""Writing a new operation: its row (and an explicit id list) in the caller's transaction, then its
workflow, started idempotently by id; and removing a row whose workflow never started."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import (
    Priority,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from bulkops.domain.model import OperationStatus, OperationType, fairness_key, operation_workflow_id
from bulkops.service import gates
from bulkops.settings import Settings
from bulkops.store.tables import OPERATIONS, TARGETS, BulkOperation
from workflows.contracts import BULK_OPERATION_WORKFLOW, BulkOperationInput
from workflows.search_attributes import OPERATION_STATUS, OPERATION_TYPE, TENANT_ID


async def insert_row(
    session: AsyncSession,
    op_id: uuid.UUID,
    tenant_id: str,
    op_type: OperationType,
    parameters: dict[str, Any],
    selection: dict[str, Any],
    max_concurrency: int,
    failure_threshold: dict[str, Any] | None,
    initiated_by: str,
    retry_of: uuid.UUID | None,
    notify_url: str | None,
    idempotency_key: str | None,
    digest: str | None,
    *,
    total_count: int = 0,
    lineage_id: uuid.UUID | None = None,
    extra: dict[str, Any] | None = None,
) -> Any:
    """The new operation's row; `lineage_id` is the root of the chain it is retried or reverted from
    (an original is its own root)."""
    return (
        await session.execute(
            insert(OPERATIONS)
            .values(
                # The gate (approval, start_at, pace) may set the first status and its fields.
                **{"status": OperationStatus.PENDING.value, **(extra or {})},
                id=op_id,
                tenant_id=tenant_id,
                operation_type=op_type.value,
                parameters=parameters,
                selection=selection,
                max_concurrency=max_concurrency,
                failure_threshold=failure_threshold,
                initiated_by=initiated_by,
                retry_of=retry_of,
                lineage_id=lineage_id or op_id,
                notify_url=notify_url,
                idempotency_key=idempotency_key,
                request_hash=digest,
                workflow_id=operation_workflow_id(op_id),
                errors=[],
                total_count=total_count,
            )
            .returning(OPERATIONS)
        )
    ).one()


async def insert_ids(session: AsyncSession, op_id: uuid.UUID, ids: list[uuid.UUID]) -> None:
    # One statement for up to 10,000 ids: unnest the array, its ordinality is the sequence.
    await session.execute(
        text(
            "INSERT INTO bulk_operation_targets (operation_id, seq, order_id) "
            "SELECT :op, t.ord, t.id FROM unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS t(id, ord)"
        ),
        {"op": op_id, "ids": ids},
    )


START_RPC_TIMEOUT = timedelta(seconds=5)


async def start_workflow(client: Client, settings: Settings, row: Any) -> None:
    """Start the operation's workflow, idempotently by its id (a second start finds the first)."""
    op_type = OperationType(row.operation_type)
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
                    SearchAttributePair(OPERATION_STATUS, row.status),
                ]
            ),
            static_summary=f"{op_type.value} · {count} · tenant {row.tenant_id}",
            static_details=f"```json\n{details}\n```",
            # Its workflow tasks and bookkeeping activities are dispatched fairly across tenants.
            priority=Priority(fairness_key=fairness_key(row.tenant_id)),
            # Bounded: with Temporal away the request answers 503 in seconds, not after the
            # client's own retries have run out (the caller repeats it with its Idempotency-Key).
            rpc_timeout=START_RPC_TIMEOUT,
        )
    except WorkflowAlreadyStartedError:
        return  # it ran already (and perhaps ended): nothing to heal


async def forget(sessionmaker: async_sessionmaker, op_id: uuid.UUID) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(delete(TARGETS).where(TARGETS.c.operation_id == op_id))
        waiting = OPERATIONS.c.status.in_(gates.WAITING)
        await session.execute(delete(OPERATIONS).where(OPERATIONS.c.id == op_id, waiting))


async def by_idempotency_key(session: AsyncSession, tenant_id: str, key: str) -> BulkOperation | None:
    """The tenant's operation created (or retried) with this Idempotency-Key, if any."""
    return await session.scalar(
        select(BulkOperation).where(
            BulkOperation.tenant_id == tenant_id, BulkOperation.idempotency_key == key
        )
    )
