"""max_orders_per_second: 400 orders at 20/s keep to within 10 % of that rate (measured from the
outcome rows' timestamps), before and after a pause, across continue-as-new, with exact counts."""

from __future__ import annotations

import asyncio
import itertools

from tests.harness import Harness, assert_replays

RATE = 20.0
ORDERS = 400  # ten seconds either side of the pause: the bucket's first burst (two seconds' worth) stays within the 10 %


def _rate(times: list[float]) -> float:
    """Orders started in [first, last) over its length: the pace, bursts or not."""
    return sum(1 for t in times if t < times[-1]) / (times[-1] - times[0])


async def test_pace_holds_across_pause_and_continue_as_new(harness: Harness) -> None:
    h = harness
    # A small history budget: the operation continues as new a few times while paced.
    h.configure(max_events_per_run=600)
    await h.start_worker()
    a = await h.tenant()
    ids = await h.seed(a, ORDERS, status="PAID")
    op = await h.start(
        a,
        {
            "operation_type": "BULK_CANCEL",
            "order_ids": [str(i) for i in ids],
            "parameters": {"reason": "paced"},
            "max_concurrency": 10,
            "max_orders_per_second": RATE,
        },
    )
    assert op["max_orders_per_second"] == RATE
    await h.wait_for(a, op["id"], lambda b: b["processed_count"] >= ORDERS // 2, timeout=60)
    assert (await a.post(f"/v1/bulk-operations/{op['id']}/pause")).status_code == 200
    paused_at = (await a.get(f"/v1/bulk-operations/{op['id']}")).json()["processed_count"]
    await asyncio.sleep(1.5)
    r = await a.post(f"/v1/bulk-operations/{op['id']}/resume")
    assert r.status_code == 200, r.text
    final = await h.wait_end(a, op["id"], timeout=90)
    assert (final["status"], final["processed_count"], final["success_count"]) == (
        "COMPLETED",
        ORDERS,
        ORDERS,
    )
    progress = await h.client.get_workflow_handle(f"bulk-op-{op['id']}").query("progress")
    assert progress["run"] > 1, "the operation should have continued as new while paced"

    items = await h.items(op["id"])
    assert len(items) == ORDERS and len({i.order_id for i in items}) == ORDERS
    times = sorted(i.processed_at.timestamp() for i in items)
    before, after = times[:paused_at], times[paused_at:]
    assert len(before) >= 100 and len(after) >= 100
    for part in (before, after):
        gaps = [round(b - a, 3) for a, b in itertools.pairwise(part) if b - a > 0.05][:40]
        assert abs(_rate(part) - RATE) <= 0.1 * RATE, (_rate(part), gaps)
    # The pause shows as a gap: nothing started while it lasted.
    assert after[0] - before[-1] >= 0.5
    # No second sees more than the bucket holds (two seconds' worth, kept when a timer fires late on a
    # loaded box) plus what it earns within that second: the bound is the design's, not luck's.
    window = [sum(1 for t in times if s <= t < s + 1.0) for s in times]
    assert max(window) <= 3 * RATE, max(window)


async def test_a_paced_walk_replays_whatever_time_its_tasks_are_given(harness: Harness) -> None:
    """Whether a paced walk waits must follow from its events, not from `workflow.now()`: a worker that
    replays a run from scratch can be handed another time for a task than a later replay computes (a
    soak's seed 7 stalled a paced export so). Replayed with every clock reading shifted by 0 to 0.9 s,
    the history still replays."""
    h = harness
    await h.start_worker()
    a = await h.tenant()
    ids = await h.seed(a, 60, status="PAID")
    body = {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids], "max_concurrency": 10}
    op = await h.start(a, {**body, "max_orders_per_second": RATE})
    final = await h.wait_end(a, op["id"], timeout=60)
    assert (final["status"], final["success_count"]) == ("COMPLETED", 60)
    history = await h.client.get_workflow_handle(op["workflow_id"]).fetch_history()
    assert any(e.HasField("timer_started_event_attributes") for e in history.events)  # it was paced
    await h.stop_worker()

    readings = itertools.count()
    await assert_replays(history, shift_s=lambda: 0.3 * (next(readings) % 4))
