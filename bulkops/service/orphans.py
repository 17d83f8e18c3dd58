"""Operations whose workflow was closed from outside bulkops (terminated in the Temporal UI, timed
out, failed): no summary row will ever come from the workflow, so the API writes it.

The row is closed as CANCELLED with a `failure_reason` naming what happened, and its counts come
from the outcome rows — which are exact, since each processed order committed its outcome with its
effect. The tenant's fairness slot is given back too.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus

from bulkops.domain.model import MAX_ERROR_SAMPLE, ErrorSample, ItemStatus, OperationStatus
from bulkops.store.tables import ITEMS, NOT_TERMINAL, OPERATIONS
from workflows.contracts import RELEASE_SIGNAL, coordinator_id

log = logging.getLogger(__name__)

# Only these: a workflow that COMPLETED wrote its summary row before it did.
CLOSED_FROM_OUTSIDE = {
    WorkflowExecutionStatus.TERMINATED: "WORKFLOW_TERMINATED",
    WorkflowExecutionStatus.TIMED_OUT: "WORKFLOW_TIMED_OUT",
    WorkflowExecutionStatus.FAILED: "WORKFLOW_FAILED",
    WorkflowExecutionStatus.CANCELED: "WORKFLOW_CANCELED",
}


async def close_orphan(
    sessionmaker: async_sessionmaker,
    client: Client,
    row: Any,
    status: WorkflowExecutionStatus,
    closed_at: datetime | None,
) -> None:
    op_id: uuid.UUID = row.id
    tenant_id: str = row.tenant_id
    reason = CLOSED_FROM_OUTSIDE[status]
    async with sessionmaker() as session, session.begin():
        processed, succeeded = (
            await session.execute(
                select(
                    func.count(),
                    func.count().filter(ITEMS.c.status == ItemStatus.SUCCEEDED.value),
                ).where(ITEMS.c.operation_id == op_id)
            )
        ).one()
        failed_rows = (
            await session.execute(
                select(ITEMS.c.order_id, ITEMS.c.error_code, ITEMS.c.error_message, ITEMS.c.retryable)
                .where(ITEMS.c.operation_id == op_id, ITEMS.c.status == ItemStatus.FAILED.value)
                .order_by(ITEMS.c.seq)
                .limit(MAX_ERROR_SAMPLE)
            )
        ).all()
        # Written once, like the workflow's own summary: a row that ended meanwhile is left alone.
        await session.execute(
            update(OPERATIONS)
            .where(OPERATIONS.c.id == op_id, NOT_TERMINAL)
            .values(
                status=OperationStatus.CANCELLED.value,
                processed_count=processed,
                success_count=succeeded,
                failed_count=processed - succeeded,
                errors=[
                    ErrorSample(
                        order_id=r.order_id,
                        code=r.error_code,
                        message=r.error_message or "",
                        retryable=r.retryable,
                    ).model_dump(mode="json")
                    for r in failed_rows
                ],
                failure_reason=reason,
                completed_at=closed_at or datetime.now(UTC),
            )
        )
    log.warning("operation %s tenant %s: workflow %s from outside; row closed", op_id, tenant_id, reason)
    try:
        await client.get_workflow_handle(coordinator_id(tenant_id)).signal(RELEASE_SIGNAL, op_id)
    except Exception as exc:  # no coordinator (fairness off), or it is gone: nothing to give back
        log.info("operation %s: no slot released: %s", op_id, exc)
