"""A worker process stopped with SIGTERM (a deploy, `docker stop`) drains: it stops taking work, lets
the orders it holds finish within BULKOPS_WORKER_SHUTDOWN_S, hands back to Temporal (as a retryable
failure, at once) those that cannot, and exits 0. Nothing is lost (no order waits for its attempt to
time out) and nothing is doubled (one outcome per order, every refund once).

The orders are held in flight by the test's own row locks on them (the per-order activity locks its
order), so the worker is surely mid-operation when the signal arrives, with every slot busy."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from psycopg import AsyncConnection
from sqlalchemy import func, select
from temporalio.api.enums.v1 import PendingActivityState

from bulkops.store.tables import Order
from tests.harness import Harness, Stack, Tenant
from tests.processes import WorkerProcess

pytestmark = pytest.mark.faults

WINDOW = 6  # the operation's max_concurrency: every slot will be held at the signal
TOTAL_CENTS = 2500


@asynccontextmanager
async def remaining_orders_locked(h: Harness, op_id: str) -> AsyncIterator[AsyncConnection]:
    """Row locks on the operation's orders that have no outcome yet, until the block ends (rolled back)."""
    async with h.order_pool.connection() as conn:
        await conn.execute(
            "SELECT o.id FROM bulk_operation_targets t JOIN orders o ON o.id = t.order_id "
            "LEFT JOIN bulk_operation_items i ON i.operation_id = t.operation_id AND i.order_id = t.order_id "
            "WHERE t.operation_id = %s AND i.order_id IS NULL FOR UPDATE OF o",
            (uuid.UUID(op_id),),
        )
        try:
            yield conn
        finally:
            await conn.rollback()


async def wait_blocked(h: Harness, n: int, timeout: float = 60) -> None:
    """Until `n` per-order attempts wait on the test's locks (the worker holds them in flight)."""
    deadline = time.monotonic() + timeout
    while True:
        async with h.order_pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND query LIKE %s",
                ("%FOR UPDATE OF o%",),
            )
            row = await cur.fetchone()
        if row is not None and row[0] >= n:
            return
        assert time.monotonic() < deadline, f"only {row} attempts blocked"
        await asyncio.sleep(0.1)


async def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (rc := proc.poll()) is None:
        assert time.monotonic() < deadline, "the worker did not exit within its graceful shutdown time"
        await asyncio.sleep(0.1)
    return rc


async def start_refund(h: Harness, a: Tenant, paid: int) -> tuple[dict[str, Any], list[uuid.UUID]]:
    ids = await h.seed(a, paid, status="PAID", total_cents=TOTAL_CENTS)
    unpaid = await h.seed(a, 10, status="PENDING", paid_at=None)
    op = await h.start(
        a,
        {
            "operation_type": "BULK_REFUND",
            "order_ids": [str(i) for i in ids + unpaid],
            "max_concurrency": WINDOW,
            "parameters": {"reason": "sigterm test"},
        },
    )
    return op, ids


async def assert_exact(h: Harness, a: Tenant, op_id: str, paid: list[uuid.UUID]) -> None:
    final = await h.wait_end(a, op_id, timeout=120)
    n = len(paid) + 10
    assert (final["status"], final["total_count"], final["processed_count"]) == ("PARTIAL_SUCCESS", n, n)
    assert (final["success_count"], final["failed_count"]) == (len(paid), 10)
    items = await h.items(op_id)
    assert len(items) == n and len({i.order_id for i in items}) == n
    refunds = await h.refunds(op_id)
    assert sorted(r.order_id for r in refunds) == sorted(paid)
    assert sum(r.amount_cents for r in refunds) == len(paid) * TOTAL_CENTS
    async with h.sessionmaker() as s:
        total = await s.scalar(select(func.sum(Order.refunded_cents)).where(Order.id.in_(paid)))
    assert total == len(paid) * TOTAL_CENTS
    row = await h.summary_row(op_id)
    assert (row.processed_count, row.success_count, row.failed_count) == (n, len(paid), 10)


async def test_sigterm_finishes_in_flight_orders_within_grace(stack: Stack, harness: Harness) -> None:
    h = harness
    # A long attempt timeout: an attempt the worker dropped would sit STARTED for a minute.
    settings = h.configure(worker_metrics_port=0, activity_timeout_s=60.0, worker_shutdown_s=20.0)
    a = await h.tenant()
    op, paid = await start_refund(h, a, 150)
    worker = WorkerProcess(settings, stack.root / "worker-sigterm.log")
    worker.start()
    assert worker.proc is not None
    try:
        await h.wait_for(a, op["id"], lambda b: b["processed_count"] >= 30, timeout=120)
        async with remaining_orders_locked(h, op["id"]):
            await wait_blocked(h, WINDOW)
            before = len(await h.items(op["id"]))
            worker.proc.send_signal(signal.SIGTERM)
            # Still draining: the held orders are the worker's to finish, well inside the grace.
            await asyncio.sleep(2.0)
            assert worker.proc.poll() is None, "the worker did not wait for its in-flight orders"
        rc = await wait_exit(worker.proc, settings.worker_shutdown_s + 10)
        assert rc == 0, f"worker exited {rc}"
        # Each held order finished on this worker, and it took no new ones: nothing is left STARTED
        # (held by a process that is gone) to wait for its attempt to time out.
        assert len(await h.items(op["id"])) == before + WINDOW
        pending = await h.pending_activities(op["id"])
        assert all(p.state != PendingActivityState.PENDING_ACTIVITY_STATE_STARTED for p in pending)
        await h.start_worker()
        await assert_exact(h, a, op["id"], paid)
    finally:
        worker.stop()


async def test_sigterm_hands_back_orders_that_outlast_the_grace(stack: Stack, harness: Harness) -> None:
    h = harness
    settings = h.configure(worker_metrics_port=0, activity_timeout_s=60.0, worker_shutdown_s=2.0)
    a = await h.tenant()
    op, paid = await start_refund(h, a, 120)
    worker = WorkerProcess(settings, stack.root / "worker-sigterm-handback.log")
    worker.start()
    assert worker.proc is not None
    try:
        await h.wait_for(a, op["id"], lambda b: b["processed_count"] >= 30, timeout=120)
        async with remaining_orders_locked(h, op["id"]):
            await wait_blocked(h, WINDOW)
            before = len(await h.items(op["id"]))
            worker.proc.send_signal(signal.SIGTERM)
            rc = await wait_exit(worker.proc, settings.worker_shutdown_s + 10)
            assert rc == 0, f"worker exited {rc}"
            # Handed back, not dropped: Temporal holds each for another attempt now, not in a minute.
            pending = await h.pending_activities(op["id"])
            assert len(pending) == WINDOW
            assert all(p.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED for p in pending)
            assert all(p.attempt == 2 for p in pending), [p.attempt for p in pending]
            assert len(await h.items(op["id"])) == before  # the cancelled attempts changed nothing
        await h.start_worker()
        await assert_exact(h, a, op["id"], paid)
    finally:
        worker.stop()
