"""Every operation type over a mixed selection ends with exact counts, codes and summary."""

from __future__ import annotations

import uuid

from bulkops.models import OperationStatus
from tests.harness import Harness


async def _check_summary(h: Harness, op_id: str, final: dict, total: int, ok: int, failed: int) -> None:
    assert (final["total_count"], final["processed_count"], final["success_count"], final["failed_count"]) == (
        total, total, ok, failed)
    row = await h.summary_row(op_id)
    assert (row.total_count, row.processed_count, row.success_count, row.failed_count) == (total, total, ok, failed)
    items = await h.items(op_id)
    assert len(items) == total
    assert sum(1 for i in items if i.status == "SUCCEEDED") == ok
    progress = await h.client.get_workflow_handle(f"bulk-op-{op_id}").query("progress")
    assert (progress["processed_count"], progress["success_count"], progress["failed_count"]) == (total, ok, failed)
    assert progress["status"] == row.status


async def test_bulk_cancel_mixed_selection(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a, b = await h.tenant("acme"), await h.tenant("other")
    paid = await h.seed(a, 5, status="PAID")
    pending = await h.seed(a, 3, status="PENDING", paid_at=None)
    shipped = await h.seed(a, 2, status="SHIPPED")
    cancelled = await h.seed(a, 2, status="CANCELLED")
    foreign = await h.seed(b, 2, status="PAID")
    unknown = [uuid.uuid4(), uuid.uuid4()]
    ids = paid + pending + shipped + cancelled + foreign + unknown
    body = {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids + paid[:2]],
            "parameters": {"reason": "fraud sweep"}}
    op = await h.start(a, body)
    assert op["total_count"] == len(ids)  # duplicates dropped
    final = await h.wait_end(a, op["id"])
    assert final["status"] == OperationStatus.PARTIAL_SUCCESS
    await _check_summary(h, op["id"], final, len(ids), 8, len(ids) - 8)
    codes = {i.order_id: i.error_code for i in await h.items(op["id"])}
    assert all(codes[i] is None for i in paid + pending)
    assert all(codes[i] == "ORDER_NOT_CANCELLABLE" for i in shipped)
    assert all(codes[i] == "ALREADY_CANCELLED" for i in cancelled)
    assert all(codes[i] == "ORDER_NOT_FOUND" for i in foreign + unknown)
    orders = await h.orders(paid + pending + foreign)
    assert all(orders[i].status == "CANCELLED" and orders[i].cancel_reason == "fraud sweep" for i in paid + pending)
    assert all(orders[i].status == "PAID" for i in foreign)  # another tenant's orders untouched
