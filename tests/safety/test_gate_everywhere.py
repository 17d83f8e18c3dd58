"""One gate for every path that moves money or touches orders: a retry and a revert the policy says
need approval start AWAITING_APPROVAL like a create; a held filter operation runs exactly the
snapshot its approver saw; a scheduled filter operation is gated again on what it selects at start."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api.test_retry_once import failed_refund, pay, refunds_of
from tests.harness import Harness, Tenant
from tests.safety.keys import Crew, set_policy


async def held(h: Harness, t: Tenant, op: dict[str, Any]) -> None:
    """`op` waits for approval and has touched nothing."""
    assert op["status"] == "AWAITING_APPROVAL", op
    await asyncio.sleep(1.0)
    live = (await t.get(f"/v1/bulk-operations/{op['id']}")).json()
    assert (live["status"], live["processed_count"]) == ("AWAITING_APPROVAL", 0), live
    assert await h.items(op["id"]) == []


async def test_a_retry_and_a_revert_wait_for_approval(crew: Crew) -> None:
    h, admin, olga, anna = crew
    await h.start_worker()
    refund, unpaid = await failed_refund(h, olga, 4, amount_cents=300, paid=False)
    await pay(h, unpaid)
    ids = await h.seed(admin, 5, note="before")
    update = {"operation_type": "BULK_UPDATE", "order_ids": [str(i) for i in ids]}
    updated = await h.wait_end(
        olga, (await h.start(olga, {**update, "parameters": {"set": {"note": "x"}}}))["id"]
    )
    assert updated["success_count"] == 5
    await set_policy(admin, approval_types=["BULK_REFUND"], approval_over_orders=3)

    r = await olga.post(f"/v1/bulk-operations/{refund['id']}/retry?all_failed=true")
    assert r.status_code == 202, r.text
    retry = r.json()
    assert "every BULK_REFUND needs approval" in retry["approval"]["reasons"]
    assert retry["approval"]["prediction"]["predicted_refund_cents"] == 1200
    r = await olga.post(f"/v1/bulk-operations/{updated['id']}/revert")
    assert r.status_code == 202, r.text
    revert = r.json()
    assert revert["approval"]["prediction"]["matched_count"] == 5
    await held(h, olga, retry)
    await held(h, olga, revert)
    assert await refunds_of(h, unpaid) == (0, 0)
    # The operator who asked cannot approve; the approver can, and then exactly the targets run.
    assert (await olga.post(f"/v1/bulk-operations/{retry['id']}/approve")).status_code == 403
    for op in (retry, revert):
        assert (await anna.post(f"/v1/bulk-operations/{op['id']}/approve")).status_code == 200
    assert (await h.wait_end(olga, retry["id"]))["success_count"] == 4
    assert (await h.wait_end(olga, revert["id"]))["success_count"] == 5
    assert await refunds_of(h, unpaid) == (4, 1200)
    assert {o.note for o in (await h.orders(ids)).values()} == {"before"}


async def test_a_held_filter_operation_runs_the_snapshot_its_approver_saw(crew: Crew) -> None:
    h, admin, olga, anna = crew
    await h.start_worker()
    await set_policy(admin, approval_types=["BULK_REFUND"])
    tag = f"snap-{uuid.uuid4().hex[:8]}"
    first = await h.seed(admin, 4, tags=[tag], total_cents=2000)
    body = {
        "operation_type": "BULK_REFUND",
        "filter": {"tags_any": [tag]},
        "parameters": {"amount_cents": 500},
    }
    op = await h.start(olga, body)
    assert op["approval"]["prediction"]["matched_count"] == 4
    # Orders that match arrive while it waits: the approver approved four, four run.
    later = await h.seed(admin, 3, tags=[tag], total_cents=2000)
    await held(h, olga, op)
    assert (await anna.post(f"/v1/bulk-operations/{op['id']}/approve")).status_code == 200
    final = await h.wait_end(olga, op["id"])
    assert final["total_count"] == final["approval"]["prediction"]["matched_count"] == 4
    assert (final["status"], final["success_count"]) == ("COMPLETED", 4)
    assert await refunds_of(h, first) == (4, 2000)
    assert await refunds_of(h, later) == (0, 0)


async def test_a_scheduled_filter_operation_is_gated_on_what_it_selects_when_it_starts(crew: Crew) -> None:
    h, admin, olga, anna = crew
    await h.start_worker()
    await set_policy(admin, approval_over_orders=2)
    tag = f"sched-{uuid.uuid4().hex[:8]}"
    start_at = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    body = {
        "operation_type": "BULK_REFUND",
        "filter": {"tags_any": [tag]},
        "parameters": {"amount_cents": 100},
        "start_at": start_at,
    }
    op = await h.start(olga, body)
    assert (op["status"], op["approval"]) == ("SCHEDULED", None)  # it matches nothing yet
    ids = await h.seed(admin, 5, tags=[tag])
    gated = await h.wait_for(
        olga, op["id"], lambda b: b["status"] not in ("SCHEDULED", "PENDING"), timeout=60
    )
    assert gated["approval"]["prediction"]["matched_count"] == 5, gated
    await held(h, olga, gated)
    assert await refunds_of(h, ids) == (0, 0)
    more = await h.seed(admin, 2, tags=[tag])
    assert (await anna.post(f"/v1/bulk-operations/{op['id']}/approve")).status_code == 200
    final = await h.wait_end(olga, op["id"])
    assert (final["total_count"], final["success_count"]) == (5, 5)
    assert await refunds_of(h, ids + more) == (5, 500)
