"""The refund drill every fault test runs: a BULK_REFUND of 1,000+ orders with a fault in the middle,
then the exact books: one outcome per selected order, one refund per refundable order, exact totals,
one summary written once and equal to the last `progress` answer, nothing outside the selection
touched."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from bulkops.store.tables import REFUNDS
from tests.harness import ITEMS, ORDERS, Harness, Tenant, shuffled


@dataclass
class Drill:
    h: Harness
    tenant: Tenant
    refundable: dict[uuid.UUID, int]  # order → the amount the refund must be (all that is refundable)
    unpaid: list[uuid.UUID]
    exhausted: list[uuid.UUID]
    untouched: list[uuid.UUID]  # same tenant but not selected, and another tenant's orders
    before: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    op_id: str = ""

    @property
    def selection(self) -> list[uuid.UUID]:
        return [*self.refundable, *self.unpaid, *self.exhausted]

    @property
    def handle(self) -> WorkflowHandle[Any, Any]:
        return self.h.client.get_workflow_handle(f"bulk-op-{self.op_id}")

    async def progress(self) -> dict[str, Any]:
        return await self.handle.query("progress")  # type: ignore[no-any-return]

    async def wait_processed(self, at_least: int, within: float = 120) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            try:
                p = await self.progress()
                if p["processed_count"] >= at_least:
                    return p
            except Exception:  # not started yet: the query has no workflow to ask
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"fewer than {at_least} orders processed in {within}s")
            await asyncio.sleep(0.1)


async def rows(h: Harness, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    async with h.sessionmaker() as session:
        found = (await session.execute(select(ORDERS).where(ORDERS.c.id.in_(ids)))).mappings().all()
    return {r["id"]: dict(r) for r in found}


async def prepare(h: Harness, n_paid: int = 1000) -> Drill:
    t, other = await h.tenant("drill"), await h.tenant("bystander")
    paid = await h.seed(t, n_paid, status="PAID")
    partial = await h.seed(t, 40, status="PARTIALLY_REFUNDED", total_cents=5000, refunded_cents=1200)
    # Paid, then cancelled: still refundable, and stays CANCELLED.
    cancelled = await h.seed(t, 20, status="CANCELLED", total_cents=3000, cancelled_at=datetime.now(UTC))
    unpaid = await h.seed(t, 30, status="PENDING", paid_at=None)
    exhausted = await h.seed(t, 10, status="REFUNDED", total_cents=2000, refunded_cents=2000)
    outside = await h.seed(t, 25, status="PAID") + await h.seed(other, 25, status="PAID")
    all_rows = await rows(h, paid + partial + cancelled)
    refundable = {i: r["total_cents"] - r["refunded_cents"] for i, r in all_rows.items()}
    d = Drill(h, t, refundable, unpaid, exhausted, outside)
    d.before = await rows(h, outside)
    return d


async def start(d: Drill, max_concurrency: int = 50) -> None:
    body = {
        "operation_type": "BULK_REFUND",
        "order_ids": [str(i) for i in shuffled(d.selection)],
        "parameters": {"reason": "fault drill"},
        "max_concurrency": max_concurrency,
    }
    d.op_id = (await d.h.start(d.tenant, body))["id"]


async def finalize_scheduled(d: Drill) -> int:
    """How many times any run of the workflow scheduled `finalize_operation` (the summary write)."""
    count = 0
    async for wf in d.h.client.list_workflows(f"WorkflowId = 'bulk-op-{d.op_id}'"):
        history = await d.h.client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        count += sum(
            1
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and e.activity_task_scheduled_event_attributes.activity_type.name == "finalize_operation"
        )
    return count


async def max_order_attempt(d: Drill) -> int:
    """The highest attempt any `process_order` reached: above 1 proves the fault hit running work."""
    top = 0
    async for wf in d.h.client.list_workflows(f"WorkflowId = 'bulk-op-{d.op_id}'"):
        history = await d.h.client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        top = max(
            [
                top,
                *(
                    e.activity_task_started_event_attributes.attempt
                    for e in history.events
                    if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
                ),
            ]
        )
    return top


async def verify(d: Drill, within: float = 240) -> dict[str, Any]:
    h = d.h
    final = await h.wait_end(d.tenant, d.op_id, timeout=within)
    total, ok = len(d.selection), len(d.refundable)
    failed = len(d.unpaid) + len(d.exhausted)
    assert (final["status"], final["total_count"], final["processed_count"]) == (
        "PARTIAL_SUCCESS",
        total,
        total,
    )
    assert (final["success_count"], final["failed_count"]) == (ok, failed)

    items = await h.items(d.op_id)
    assert len(items) == total and {i.order_id for i in items} == set(d.selection)
    codes = {i.order_id: i.error_code for i in items}
    assert all(codes[i] is None for i in d.refundable)
    assert all(codes[i] == "ORDER_NOT_PAID" for i in d.unpaid)
    assert all(codes[i] == "NOTHING_TO_REFUND" for i in d.exhausted)

    refunds = await h.refunds(d.op_id)
    assert len(refunds) == ok, f"{len(refunds)} refunds for {ok} refundable orders"
    assert {r.order_id: r.amount_cents for r in refunds} == d.refundable
    async with h.sessionmaker() as session:
        # No refund at all (from any operation) for an order that was not refundable or not selected.
        others = await session.scalar(
            select(func.count())
            .select_from(REFUNDS)
            .where(REFUNDS.c.order_id.in_([*d.unpaid, *d.exhausted, *d.untouched]))
        )
        assert others == 0
        stray = await session.scalar(
            select(func.count())
            .select_from(ITEMS)
            .where(ITEMS.c.operation_id == uuid.UUID(d.op_id), ITEMS.c.order_id.notin_(d.selection))
        )
        assert stray == 0
    after = await rows(h, list(d.refundable))
    assert all(r["refunded_cents"] == r["total_cents"] for r in after.values())
    assert sum(r["refunded_cents"] for r in after.values()) - sum(
        r["total_cents"] - d.refundable[i] for i, r in after.items()
    ) == sum(d.refundable.values())
    assert all(r["status"] == ("CANCELLED" if r["cancelled_at"] else "REFUNDED") for r in after.values())
    assert await rows(h, d.untouched) == d.before

    row = await h.summary_row(d.op_id)
    progress = await d.progress()
    assert (row.status, row.total_count, row.processed_count, row.success_count, row.failed_count) == (
        progress["status"],
        progress["total_count"],
        progress["processed_count"],
        progress["success_count"],
        progress["failed_count"],
    )
    assert [e["order_id"] for e in row.errors] == [e["order_id"] for e in progress["errors"]]
    assert await finalize_scheduled(d) == 1
    return final
