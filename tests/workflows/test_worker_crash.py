"""SIGKILL the worker twice during a 600-order refund, and once mid-snapshot: nothing is refunded twice or
lost, and nothing waits out an attempt's whole bound."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select
from temporalio.api.enums.v1 import PendingActivityState

from activities.contracts import SNAPSHOT_SELECTION
from bulkops.store.tables import BulkOperation, Order, Refund
from tests.harness import Harness, Stack
from tests.processes import WorkerProcess

pytestmark = pytest.mark.faults


async def test_refund_survives_worker_sigkill(stack: Stack, harness: Harness) -> None:
    h = harness
    settings = h.configure(activity_timeout_s=2.0, worker_metrics_port=0, activity_max_attempts=10)
    a = await h.tenant()
    paid = await h.seed(a, 560, status="PAID", total_cents=2500)
    unpaid = await h.seed(a, 20, status="PENDING", paid_at=None)
    done = await h.seed(a, 20, status="REFUNDED", total_cents=2500, refunded_cents=2500)
    bystanders = await h.seed(a, 30, status="PAID", total_cents=2500)  # not selected
    ids = paid + unpaid + done
    worker = WorkerProcess(settings, stack.root / "worker-crash.log")
    worker.start()
    try:
        op = await h.start(
            a,
            {
                "operation_type": "BULK_REFUND",
                "order_ids": [str(i) for i in ids],
                "max_concurrency": 10,
                "parameters": {"reason": "crash test"},
            },
        )
        for threshold in (120, 330):
            await h.wait_for(a, op["id"], lambda b, t=threshold: b["processed_count"] >= t, timeout=120)
            worker.kill()
            worker.start()
        final = await h.wait_end(a, op["id"], timeout=240)
        progress = await h.client.get_workflow_handle(f"bulk-op-{op['id']}").query("progress")
    finally:
        worker.stop()
    assert (final["status"], final["total_count"], final["processed_count"]) == ("PARTIAL_SUCCESS", 600, 600)
    assert (final["success_count"], final["failed_count"]) == (560, 40)
    refunds = await h.refunds(op["id"])
    assert len(refunds) == 560 and len({r.order_id for r in refunds}) == 560
    assert {r.order_id for r in refunds} == set(paid)
    assert sum(r.amount_cents for r in refunds) == 560 * 2500
    async with h.sessionmaker() as s:
        total = await s.scalar(select(func.sum(Order.refunded_cents)).where(Order.id.in_(paid)))
        assert total == 560 * 2500
        assert (
            await s.scalar(select(func.count()).select_from(Refund).where(Refund.order_id.in_(bystanders)))
            == 0
        )
    items = await h.items(op["id"])
    assert len(items) == 600 and len({i.order_id for i in items}) == 600
    row = await h.summary_row(op["id"])
    assert (row.processed_count, row.success_count, row.failed_count) == (600, 560, 40)
    assert (progress["processed_count"], progress["success_count"]) == (600, 560)
    orders = await h.orders(bystanders)
    assert all(o.refunded_cents == 0 and o.status == "PAID" for o in orders.values())


async def _snapshot_started(h: Harness, op_id: str, timeout: float = 60) -> str:
    """Wait until the operation's snapshot attempt is running on a worker; that worker's identity."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for pending in await h.pending_activities(op_id):
            started = pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            if pending.activity_type.name == SNAPSHOT_SELECTION and started:
                return pending.last_worker_identity
        await asyncio.sleep(0.1)
    raise TimeoutError(f"operation {op_id}: no snapshot attempt started")


async def test_a_worker_lost_mid_snapshot_hands_it_on_within_its_heartbeat(
    stack: Stack, harness: Harness
) -> None:
    """A snapshot attempt whose worker is gone (SIGKILLed, or a task lost in transit at a deploy's
    shutdown, temporalio/sdk-rust#1080) is retried once its heartbeats stop, not after the attempt's
    10-minute bound: until then the operation holds its tenant's slot and everything behind it waits.
    Found by the soak (seed 11): 100 operations of one tenant PENDING behind such a snapshot."""
    h = harness
    settings = h.configure(worker_metrics_port=0)
    a = await h.tenant()
    ids = await h.seed(a, 12, status="PAID", total_cents=2500)
    op = await h.start(
        a,
        {"operation_type": "BULK_REFUND", "order_ids": [str(i) for i in ids], "parameters": {"reason": "x"}},
    )
    worker = WorkerProcess(settings, stack.root / "worker-snapshot.log")
    try:
        # The snapshot locks the operation's row first: holding it keeps the attempt running.
        async with h.sessionmaker() as blocker, blocker.begin():
            await blocker.execute(
                select(BulkOperation.id).where(BulkOperation.id == uuid.UUID(op["id"])).with_for_update()
            )
            worker.start()
            await _snapshot_started(h, op["id"])
            worker.kill()
            worker.start()
        final = await h.wait_end(a, op["id"], timeout=120)
    finally:
        worker.stop()
    assert (final["status"], final["processed_count"], final["success_count"]) == ("COMPLETED", 12, 12)
    refunds = await h.refunds(op["id"])
    assert len(refunds) == 12 and {r.order_id for r in refunds} == set(ids)
    assert sum(r.amount_cents for r in refunds) == 12 * 2500
