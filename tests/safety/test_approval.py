"""Four-eyes approval: a refund over the tenant's threshold waits in AWAITING_APPROVAL with the dry
run's prediction and touches nothing until approved, then runs with exact counts; a rejected or
expired one ends CANCELLED with the reason, no order touched."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.api.sdk.v1 import WorkflowMetadata

from bulkops.store.tables import BulkOperationItem
from tests.safety.keys import Crew, audit, set_policy
from tests.workflows.test_temporal_ui import _listed


async def test_refund_over_threshold_waits_for_approval_then_runs_exactly(crew: Crew) -> None:
    h, admin, olga, anna = crew
    await h.start_worker()
    await set_policy(admin, approval_over_refund_cents=5_000, approval_window_s=3600)
    paid = await h.seed(admin, 20, status="PAID")
    unpaid = await h.seed(admin, 5, status="PENDING", paid_at=None)
    expected_total = sum(1000 + (i % 50) * 10 for i in range(20))
    body = {"operation_type": "BULK_REFUND", "order_ids": [str(i) for i in paid + unpaid]}

    op = await h.start(olga, body)
    assert op["status"] == "AWAITING_APPROVAL"
    prediction = op["approval"]["prediction"]
    assert (prediction["matched_count"], prediction["would_fail_count"]) == (25, 5)
    assert prediction["would_fail_by_code"] == {"ORDER_NOT_PAID": 5}
    assert prediction["predicted_refund_cents"] == expected_total
    assert "predicted refund" in op["approval"]["reasons"][0]
    # Under the threshold, no approval: this one refunds paid[0] while the big one waits.
    small = await h.start(olga, {**body, "order_ids": [str(paid[0])]})
    assert small["approval"] is None and small["status"] != "AWAITING_APPROVAL"
    assert (await h.wait_end(olga, small["id"]))["status"] == "COMPLETED"
    await asyncio.sleep(1.5)
    live = (await olga.get(f"/v1/bulk-operations/{op['id']}")).json()
    assert live["status"] == "AWAITING_APPROVAL" and live["processed_count"] == 0
    assert (
        await h.count(BulkOperationItem.__table__, BulkOperationItem.operation_id == uuid.UUID(op["id"])) == 0
    )
    assert await h.refunds(op["id"]) == []

    r = await anna.post(f"/v1/bulk-operations/{op['id']}/approve")
    assert r.status_code == 200, r.text
    final = await h.wait_end(olga, op["id"])
    # paid[0] was fully refunded by `small` in between: it now fails NOTHING_TO_REFUND.
    assert (final["status"], final["success_count"], final["failed_count"]) == ("PARTIAL_SUCCESS", 19, 6)
    refunds = await h.refunds(op["id"])
    assert len(refunds) == 19 and sum(r.amount_cents for r in refunds) == expected_total - 1000
    assert final["approval"]["status"] == "APPROVED" and final["approval"]["decided_by"] == "anna"


async def test_rejected_and_expired_end_cancelled_touching_nothing(crew: Crew) -> None:
    h, admin, olga, anna = crew
    await h.start_worker()
    await set_policy(admin, approval_types=["BULK_REFUND"], approval_window_s=6)
    ids = await h.seed(admin, 10, status="PAID")
    body = {"operation_type": "BULK_REFUND", "order_ids": [str(i) for i in ids]}
    rejected = await h.start(olga, body)
    expiring = await h.start(olga, body)
    assert rejected["status"] == expiring["status"] == "AWAITING_APPROVAL"
    # The Temporal UI finds them by status and says since when they wait.
    waiting = f"TenantId='{admin.id}' AND BulkOperationStatus='AWAITING_APPROVAL'"
    both = {rejected["workflow_id"], expiring["workflow_id"]}
    assert await _listed(h.client, waiting, both) == both
    handle = h.client.get_workflow_handle(expiring["workflow_id"])
    meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert meta.current_details.startswith("**AWAITING_APPROVAL** · awaiting approval since")

    r = await anna.post(f"/v1/bulk-operations/{rejected['id']}/reject", json={"comment": "wrong list"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["failure_reason"]) == ("CANCELLED", "APPROVAL_REJECTED")
    assert (await anna.post(f"/v1/bulk-operations/{rejected['id']}/approve")).status_code == 409

    # Cancelled by its creator while it waits: the approval is void, nothing touched either.
    withdrawn = await h.start(olga, body)
    r = await olga.post(f"/v1/bulk-operations/{withdrawn['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED", r.text
    assert r.json()["approval"]["status"] == "CANCELLED" and r.json()["failure_reason"] is None
    assert [e["action"] for e in await audit(olga, withdrawn["id"])] == ["created", "cancelled", "ended"]

    final = await h.wait_end(olga, expiring["id"], timeout=30)
    assert (final["status"], final["failure_reason"]) == ("CANCELLED", "APPROVAL_EXPIRED")
    assert final["approval"]["status"] == "EXPIRED"
    assert (await anna.post(f"/v1/bulk-operations/{expiring['id']}/approve")).status_code == 409
    for op in (rejected, expiring, withdrawn):
        assert await h.refunds(op["id"]) == []
        row = await h.summary_row(op["id"])
        assert (row.status, row.processed_count, row.started_at) == ("CANCELLED", 0, None)
    assert all(o.refunded_cents == 0 and o.status == "PAID" for o in (await h.orders(ids)).values())
    assert [e["action"] for e in await audit(olga, rejected["id"])] == ["created", "rejected", "ended"]
    assert [e["action"] for e in await audit(olga, expiring["id"])] == ["created", "expired", "ended"]
