"""A queue of waiting operations costs rows only for those that run: 200 `filter: {}` operations
over 100,000 orders, queued behind a running one, write no target rows until their slot comes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import text

from bulkops.store.tables import TARGETS
from tests.harness import Harness
from tests.support import SlowOrders

QUEUED = 200
ORDERS = 100_000


async def seed_many(h: Harness, tenant_id: str, n: int) -> None:
    async with h.sessionmaker() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO orders (id, tenant_id, status, currency, total_cents, paid_at, created_at, "
                "updated_at) SELECT gen_random_uuid(), :t, 'PAID', 'USD', 1000, now(), "
                "now() + g * interval '1 microsecond', now() FROM generate_series(1, :n) AS g"
            ),
            {"t": tenant_id, "n": n},
        )


async def test_queued_operations_write_no_target_rows_until_they_run(harness: Harness) -> None:
    h = harness
    h.configure(
        tenant_max_running=1,
        tenant_max_waiting=QUEUED + 1,
        tenant_creates_per_minute=QUEUED + 10,
        tenant_max_concurrency=10 * (QUEUED + 1),
    )
    await h.start_worker(SlowOrders(h.order_pool, delay=1.0))
    t = await h.tenant("queue")
    blocker_orders = await h.seed(t, 5)
    await seed_many(h, t.id, ORDERS)
    # Holds the tenant's only slot: paused with orders left, it neither ends nor lets go.
    blocker = await h.start(
        t,
        {
            "operation_type": "BULK_CANCEL",
            "order_ids": [str(i) for i in blocker_orders],
            "parameters": {"reason": "x"},
            "max_concurrency": 1,
        },
    )
    await h.wait_for(t, blocker["id"], lambda b: b["status"] == "PROCESSING")
    paused = await t.post(f"/v1/bulk-operations/{blocker['id']}/pause")
    assert paused.status_code == 200 and paused.json()["processed_count"] < 5, paused.text

    body: dict[str, Any] = {
        "operation_type": "BULK_EXPORT",
        "filter": {},
        "parameters": {"format": "csv"},
        "max_concurrency": 10,
    }
    queued: list[dict[str, Any]] = []
    for start in range(0, QUEUED, 25):
        queued += await asyncio.gather(*(h.start(t, body) for _ in range(start, min(start + 25, QUEUED))))
    assert {op["status"] for op in queued} == {"PENDING"}
    # Every one of them has reached the tenant's queue (where a snapshot used to come first).
    coordinator = h.client.get_workflow_handle(f"bulk-tenant-{t.id}")
    for _ in range(600):
        state = await coordinator.query("snapshot")
        if len(state["queue"]) == QUEUED:
            break
        await asyncio.sleep(0.1)
    assert len(state["queue"]) == QUEUED
    queued_ids = [uuid.UUID(op["id"]) for op in queued]
    assert await h.count(TARGETS, TARGETS.c.operation_id.in_(queued_ids)) == 0
    listed = await t.get(f"/v1/bulk-operations/{queued[0]['id']}")
    assert listed.json()["status"] == "PENDING"

    # The blocker ends: the oldest queued operation gets the slot and only then its 100,000 rows.
    assert (await t.post(f"/v1/bulk-operations/{blocker['id']}/cancel")).status_code == 200
    first = min(queued, key=lambda op: (op["created_at"], op["id"]))
    running = await h.wait_for(t, first["id"], lambda b: b["status"] == "PROCESSING", timeout=60)
    assert running["total_count"] == ORDERS + 5
    assert await h.count(TARGETS, TARGETS.c.operation_id == uuid.UUID(first["id"])) == ORDERS + 5
    assert await h.count(TARGETS, TARGETS.c.operation_id.in_(queued_ids)) == ORDERS + 5
    assert (await t.post(f"/v1/bulk-operations/{first['id']}/cancel")).status_code == 200
