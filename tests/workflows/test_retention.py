"""Retention through the real Temporal Schedule: exactly the targets, items and exported rows of
operations that ended more than BULKOPS_RETENTION_DAYS ago go; their summary rows and audit trails
stay; operations that ended recently or still run keep everything."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from bulkops.domain.model import operation_workflow_id
from bulkops.service.retention import ensure_retention_schedule, retention_schedule_id
from bulkops.store.tables import EVENTS, ITEMS, OPERATIONS, TARGETS
from tests.harness import Harness, Tenant

NOW = datetime.now(UTC)


async def operation(
    h: Harness, t: Tenant, status: str, *, ended: datetime | None, rows: int, export: bool = False
) -> uuid.UUID:
    """An operation with `rows` targets and outcome items (exported rows in `result` for an export)."""
    op_id = uuid.uuid4()
    order_ids = [uuid.uuid4() for _ in range(rows)]
    async with h.sessionmaker() as session, session.begin():
        await session.execute(
            insert(OPERATIONS).values(
                id=op_id,
                lineage_id=op_id,
                tenant_id=t.id,
                operation_type="BULK_EXPORT" if export else "BULK_CANCEL",
                status=status,
                parameters={"format": "csv"} if export else {"reason": "x"},
                selection={"filter": {}},
                max_concurrency=5,
                workflow_id=operation_workflow_id(op_id),
                total_count=rows,
                processed_count=rows,
                success_count=rows,
                errors=[],
                created_at=(ended or NOW) - timedelta(hours=1),
                completed_at=ended,
            )
        )
        await session.execute(
            insert(TARGETS),
            [{"operation_id": op_id, "seq": i + 1, "order_id": o} for i, o in enumerate(order_ids)],
        )
        await session.execute(
            insert(ITEMS),
            [
                {
                    "operation_id": op_id,
                    "order_id": o,
                    "seq": i + 1,
                    "status": "SUCCEEDED",
                    "result": {"id": str(o), "customer_email": f"c{i}@example.com"} if export else None,
                }
                for i, o in enumerate(order_ids)
            ],
        )
        await session.execute(
            insert(EVENTS).values(operation_id=op_id, event_key="created", action="created")
        )
    return op_id


async def rows_of(h: Harness, op_id: uuid.UUID) -> tuple[int, int, int, Any]:
    targets = await h.count(TARGETS, TARGETS.c.operation_id == op_id)
    items = await h.count(ITEMS, ITEMS.c.operation_id == op_id)
    events = await h.count(EVENTS, EVENTS.c.operation_id == op_id)
    async with h.sessionmaker() as session:
        summary = (await session.execute(select(OPERATIONS).where(OPERATIONS.c.id == op_id))).one()
    return targets, items, events, summary


async def test_retention_deletes_exactly_the_expired_rows_through_the_schedule(harness: Harness) -> None:
    h = harness
    h.configure(retention_days=90, retention_batch_rows=50)
    await h.start_worker()
    t = await h.tenant("retention")
    expired_export = await operation(h, t, "COMPLETED", ended=NOW - timedelta(days=91), rows=120, export=True)
    expired_cancel = await operation(h, t, "CANCELLED", ended=NOW - timedelta(days=400), rows=3)
    recent = await operation(h, t, "PARTIAL_SUCCESS", ended=NOW - timedelta(days=89), rows=10)
    running = await operation(h, t, "PROCESSING", ended=None, rows=10)
    async with h.sessionmaker() as session, session.begin():  # running, though created long ago
        await session.execute(
            OPERATIONS.update().where(OPERATIONS.c.id == running).values(created_at=NOW - timedelta(days=365))
        )

    assert await ensure_retention_schedule(h.client, h.settings) is True
    assert await ensure_retention_schedule(h.client, h.settings) is False  # again: updated, not doubled
    schedule = h.client.get_schedule_handle(retention_schedule_id(h.settings))
    try:
        await schedule.trigger()
        for _ in range(200):
            actions = (await schedule.describe()).info.recent_actions
            if actions:
                break
            await asyncio.sleep(0.1)
        run = h.client.get_workflow_handle(actions[-1].action.workflow_id)
        result = await asyncio.wait_for(run.result(), 60)
    finally:
        await schedule.delete()

    # 120 items and 120 targets in batches of 50: several calls, each one short transaction.
    assert result["operations_purged"] >= 2 and result["items_deleted"] >= 123
    for op_id, rows in ((expired_export, 120), (expired_cancel, 3)):
        targets, items, events, summary = await rows_of(h, op_id)
        assert (targets, items) == (0, 0)
        assert events == 1, "the audit trail stays"
        assert summary.purged_at is not None and summary.total_count == summary.success_count == rows
    for op_id in (recent, running):
        targets, items, events, summary = await rows_of(h, op_id)
        assert (targets, items, events) == (10, 10, 1) and summary.purged_at is None
    assert (await t.get(f"/v1/bulk-operations/{expired_export}")).json()["success_count"] == 120
    gone = await t.get(f"/v1/bulk-operations/{expired_export}/export")
    assert gone.status_code == 410 and gone.headers["content-type"].startswith("application/problem+json")
