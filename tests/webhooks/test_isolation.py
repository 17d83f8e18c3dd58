"""Receivers that never answer hold webhook slots only: a concurrent 200-order operation runs as
fast as it does with no webhooks at all (within 10 %, measured from its outcome timestamps).

An A/B in one process at one time: two workers alike in all but the hanging deliveries, each with
its own task queue, run the same operation side by side, so the box's own noise (it is shared, and
has two cores) falls on both alike.
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from bulkops.store.tables import ITEMS
from tests.harness import Harness, Stack, Tenant
from tests.support import SlowOrders
from tests.webhooks.receivers import receiver

ORDERS = 200
# Each order holds its slot this long, as one waiting on a payment API would.
DELAY_S = 0.5
SLOTS = 20  # activity slots of each worker: the orders' window, and all a shared pool would have


async def run_seconds(h: Harness, t: Tenant, orders: int = ORDERS) -> float:
    """Seconds from the operation's first outcome to its last."""
    ids = await h.seed(t, orders)
    body = {
        "operation_type": "BULK_CANCEL",
        "order_ids": [str(i) for i in ids],
        "parameters": {"reason": "x"},
    }
    op = await h.start(t, {**body, "max_concurrency": SLOTS})
    done = await h.wait_end(t, op["id"])
    assert done["success_count"] == orders
    async with h.sessionmaker() as session:
        first, last = (
            await session.execute(
                select(func.min(ITEMS.c.processed_at), func.max(ITEMS.c.processed_at)).where(
                    ITEMS.c.operation_id == uuid.UUID(op["id"])
                )
            )
        ).one()
    return float((last - first).total_seconds())


async def test_receivers_that_never_answer_do_not_slow_orders(stack: Stack, harness: Harness) -> None:
    knobs = {
        "webhook_allow_private": True,
        "webhook_timeout_s": 60,
        "max_concurrent_activities": SLOTS,
        "webhook_max_concurrent": 2,
    }
    alone = harness
    alone.configure(**knobs)
    twin = alone.settings.model_copy(update={"task_queue": f"test-{uuid.uuid4().hex[:12]}"})
    async with Harness.open(stack, alone.client, twin) as beside:
        # A run's length is set by its slots (200 * 0.5 s / 20 = 5 s; the two runs together use a
        # small part of what this box can do, even shared), not by spare CPU, and a slot lost to a
        # webhook shows. (With 1,000 orders at 0.2 s the runs were CPU-bound on a shared box.)
        for h in (alone, beside):
            await h.start_worker(SlowOrders(h.order_pool, delay=DELAY_S))
        a, b = await alone.tenant("orders"), await beside.tenant("orders")
        await asyncio.gather(run_seconds(alone, a, 2 * SLOTS), run_seconds(beside, b, 2 * SLOTS))  # warm-up

        hooks = await beside.tenant("hooks")
        targets = await beside.seed(hooks, SLOTS)
        async with receiver("silent") as rx:
            # More hanging deliveries than the worker has activity slots in all.
            body = {"operation_type": "BULK_CANCEL", "parameters": {"reason": "x"}, "notify_url": rx.url}
            ops = await asyncio.gather(
                *(beside.start(hooks, {**body, "order_ids": [str(o)]}) for o in targets)
            )
            # Ended (their summary rows written): only their deliveries are left.
            await asyncio.gather(*(beside.wait_end(hooks, op["id"]) for op in ops))
            for _ in range(300):
                if rx.connections >= 2:
                    break
                await asyncio.sleep(0.1)
            assert rx.connections == 2  # every webhook slot of `beside` hangs on the receiver
            control, treated = await asyncio.gather(run_seconds(alone, a), run_seconds(beside, b))
            # Deliveries never took more than their own slots, however many waited.
            assert rx.connections == 2
    print(
        f"{ORDERS} orders: {control:.2f}s on the worker alone, {treated:.2f}s beside {SLOTS} hanging deliveries"
    )
    # Sharing the order slots, the hanging deliveries would stall it for their whole 60 s timeout.
    assert treated <= control * 1.10, f"{treated:.2f}s beside hanging receivers vs {control:.2f}s alone"
