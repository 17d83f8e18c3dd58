"""A scheduled operation does not start before its `start_at` — across a worker SIGKILL and a
restart of the Temporal server while it waits — and starts after it, with the selection evaluated
when it starts (orders created meanwhile are in it)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bulkops.store.tables import BulkOperationTarget
from tests.harness import Harness, Tenant, eventually
from tests.processes import WorkerProcess
from tests.safety.keys import audit

pytestmark = pytest.mark.faults


async def test_scheduled_start_waits_through_worker_kill_and_temporal_restart(fault_harness: Harness) -> None:
    h = fault_harness
    settings = h.configure(activity_timeout_s=2.0, worker_metrics_port=0)
    a = await h.tenant()
    early = await h.seed(a, 10, tags=["night"])
    # The worker's start, the wait for its timer, the kill and the restart take ~8 s here; the margin
    # is for a loaded machine.
    start_at = datetime.now(UTC) + timedelta(seconds=16)
    worker = WorkerProcess(settings, h.stack.root / "scheduled-worker.log")
    worker.start()
    try:
        op = await h.start(
            a,
            {
                "operation_type": "BULK_UPDATE",
                "filter": {"tags_any": ["night"]},
                "parameters": {"set": {"note": "nightly"}},
                "start_at": start_at.isoformat(),
            },
        )
        assert op["status"] == "SCHEDULED"
        late = await h.seed(a, 5, tags=["night"])  # created after the operation, before it starts
        # The row says SCHEDULED from the create on; the workflow's own `scheduled` event says it
        # runs and waits on its timer, which is what the kill and the restart must not disturb.
        await eventually(lambda: _recorded(a, op["id"], "scheduled"), timeout=30)
        worker.kill()
        await asyncio.to_thread(h.stack.temporal.stop)
        await asyncio.sleep(2)
        await asyncio.to_thread(h.stack.temporal.start)
        worker.start()
        judged = 0
        while datetime.now(UTC) < start_at - timedelta(seconds=1):
            body = (await a.get(f"/v1/bulk-operations/{op['id']}")).json()
            targets = await h.count(
                BulkOperationTarget.__table__, BulkOperationTarget.operation_id == op["id"]
            )
            # A read asked for before `start_at` may be answered after it (a progress query waits for the
            # restarted worker): only what was true before `start_at` is judged here.
            if datetime.now(UTC) < start_at:
                assert body["status"] == "SCHEDULED" and body["processed_count"] == 0, body
                assert targets == 0
                judged += 1
            await asyncio.sleep(0.5)
        assert judged > 0
        final = await h.wait_end(a, op["id"], timeout=120)
    finally:
        worker.stop()
    assert (final["status"], final["total_count"], final["success_count"]) == ("COMPLETED", 15, 15)
    started = datetime.fromisoformat(final["started_at"])
    assert started >= start_at
    items = await h.items(op["id"])
    assert {i.order_id for i in items} == set(early + late)
    assert min(i.processed_at for i in items) >= start_at
    assert all(o.note == "nightly" for o in (await h.orders(early + late)).values())
    assert [e["action"] for e in await audit(a, op["id"])] == ["created", "scheduled", "started", "ended"]


async def _recorded(tenant: Tenant, op_id: str, action: str) -> bool:
    return action in [e["action"] for e in await audit(tenant, op_id)]
