"""While it waits for its `start_at`, a scheduled operation can be approved and cancelled; a
cancelled one touches nothing. (That the wait survives crashes: tests/faults/test_scheduled_start.py.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bulkops.store.tables import BulkOperationItem, BulkOperationTarget
from tests.harness import assert_replays
from tests.safety.keys import Crew, audit, set_policy


async def test_approve_then_cancel_while_scheduled(crew: Crew) -> None:
    h, admin, olga, anna = crew
    await h.start_worker()
    await set_policy(admin, approval_types=["BULK_CANCEL"], default_max_orders_per_second=7)
    ids = await h.seed(admin, 5, status="PAID")
    later = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    body = {"operation_type": "BULK_CANCEL", "filter": {"statuses": ["PAID"]}, "start_at": later}
    # An id list is gated at create (its targets are fixed then); a filter when it starts.
    listed = {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids], "start_at": later}
    gated = await h.start(olga, listed)
    assert gated["status"] == "AWAITING_APPROVAL" and gated["start_at"] is not None
    assert gated["max_orders_per_second"] == 7  # the tenant's default pace
    r = await anna.post(f"/v1/bulk-operations/{gated['id']}/approve")
    assert r.status_code == 200, r.text
    await h.wait_for(olga, gated["id"], lambda b: b["status"] == "SCHEDULED")
    # The query answers first; the row follows once the workflow's status activity has run.
    for _ in range(100):
        if (await h.summary_row(gated["id"])).status == "SCHEDULED":
            break
        await asyncio.sleep(0.1)
    assert (await h.summary_row(gated["id"])).status == "SCHEDULED"
    plain = await h.start(olga, {**body, "operation_type": "BULK_REFUND", "max_orders_per_second": 2.5})
    assert (plain["status"], plain["max_orders_per_second"]) == ("SCHEDULED", 2.5)
    await h.wait_for(olga, plain["id"], lambda b: b["status"] == "SCHEDULED")

    for op, actions in (
        (gated, ["created", "approved", "scheduled", "cancelled", "ended"]),
        (plain, ["created", "scheduled", "cancelled", "ended"]),
    ):
        r = await olga.post(f"/v1/bulk-operations/{op['id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "CANCELLED", r.text
        assert [e["action"] for e in await audit(olga, op["id"])] == actions
        # Never started: the filter was never evaluated, no order was touched.
        targets = BulkOperationTarget.operation_id == op["id"]
        assert await h.count(BulkOperationTarget.__table__, targets) == (5 if op is gated else 0)
        assert await h.count(BulkOperationItem.__table__, BulkOperationItem.operation_id == op["id"]) == 0
        assert (await h.summary_row(op["id"])).started_at is None
    assert all(o.status == "PAID" and o.refunded_cents == 0 for o in (await h.orders(ids)).values())


async def test_the_gates_replay_whatever_time_their_tasks_are_given(crew: Crew) -> None:
    """Whether an operation waits for its `start_at`, or finds its approval window over, must follow
    from events, not from `workflow.now()` (`workflows.clock`): replayed with every clock reading a
    minute later (past both), an approved, scheduled operation's history still replays."""
    h, admin, olga, anna = crew
    await h.start_worker()
    await set_policy(admin, approval_types=["BULK_CANCEL"], approval_window_s=30)
    ids = await h.seed(admin, 3, status="PAID")
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    body = {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids], "start_at": soon}
    op = await h.start(olga, body)
    assert op["status"] == "AWAITING_APPROVAL"
    assert (await anna.post(f"/v1/bulk-operations/{op['id']}/approve")).status_code == 200
    final = await h.wait_end(olga, op["id"])
    assert (final["status"], final["success_count"]) == ("COMPLETED", 3)
    assert [e["action"] for e in await audit(olga, op["id"])] == [
        "created",
        "approved",
        "scheduled",
        "started",
        "ended",
    ]
    history = await h.client.get_workflow_handle(op["workflow_id"]).fetch_history()
    await h.stop_worker()

    await assert_replays(history, shift_s=lambda: 60.0)
