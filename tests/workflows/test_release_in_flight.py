"""A release deployed while operations run: the current code starts them, its worker stops (a deploy),
and a worker with a changed workflow (`PatchedRelease`, behind `workflow.patched`) on the same task
queue takes them over mid-way. Each finishes exact: one outcome per order, every refund once, the
summary row equal to its outcomes. The runs begun on the old code keep its behaviour to their end (no
patch marker); an operation started after the deploy takes the release's branch (the marker)."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType

from tests.harness import Harness
from tests.support import SlowOrders
from tests.workflows.releases import PatchedRelease, with_release
from tests.workflows.test_worker_sigterm import assert_exact, start_refund

OPERATIONS = 3
PAID = 40  # and 10 unpaid orders each: 50 orders, 6 at a time, 0.1 s each, about a second a run


async def patch_markers(h: Harness, op_id: str) -> int:
    history = await h.client.get_workflow_handle(f"bulk-op-{op_id}").fetch_history()
    return sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED)


async def test_operations_in_flight_finish_exact_across_a_patched_release(harness: Harness) -> None:
    h = harness
    await h.start_worker(SlowOrders(h.order_pool, delay=0.1))
    a = await h.tenant()
    started = [await start_refund(h, a, PAID) for _ in range(OPERATIONS)]
    for op, _ in started:
        await h.wait_for(a, op["id"], lambda b: 6 <= b["processed_count"])
    # The deploy: the old worker drains and stops, the release's worker takes the same queue.
    await h.stop_worker()
    mid_way = [(await h.summary_row(op["id"])).processed_count for op, _ in started]
    await h.start_worker(SlowOrders(h.order_pool, delay=0.1), workflows=with_release(PatchedRelease))
    after = await start_refund(h, a, PAID)
    await asyncio.gather(*(assert_exact(h, a, op["id"], paid) for op, paid in [*started, after]))
    for (op, _), done in zip(started, mid_way, strict=True):
        assert done < PAID + 10, "an operation ended before the release: the test deployed too late"
        assert await patch_markers(h, op["id"]) == 0, "a run begun on the old code changed behaviour"
    assert await patch_markers(h, after[0]["id"]) > 0, "the release's branch never ran"
