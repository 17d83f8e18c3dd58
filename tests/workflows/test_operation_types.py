"""Every operation type over a mixed selection ends with exact counts, codes and summary."""

from __future__ import annotations

import uuid

from bulkops.domain.model import OperationStatus
from tests.harness import Harness


async def _check_summary(h: Harness, op_id: str, final: dict, total: int, ok: int, failed: int) -> None:
    assert (
        final["total_count"],
        final["processed_count"],
        final["success_count"],
        final["failed_count"],
    ) == (total, total, ok, failed)
    row = await h.summary_row(op_id)
    assert (row.total_count, row.processed_count, row.success_count, row.failed_count) == (
        total,
        total,
        ok,
        failed,
    )
    items = await h.items(op_id)
    assert len(items) == total
    assert sum(1 for i in items if i.status == "SUCCEEDED") == ok
    progress = await h.client.get_workflow_handle(f"bulk-op-{op_id}").query("progress")
    assert (progress["processed_count"], progress["success_count"], progress["failed_count"]) == (
        total,
        ok,
        failed,
    )
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
    body = {
        "operation_type": "BULK_CANCEL",
        "order_ids": [str(i) for i in ids + paid[:2]],
        "parameters": {"reason": "fraud sweep"},
    }
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
    assert all(
        orders[i].status == "CANCELLED" and orders[i].cancel_reason == "fraud sweep" for i in paid + pending
    )
    assert all(orders[i].status == "PAID" for i in foreign)  # another tenant's orders untouched


async def test_bulk_refund_mixed_selection(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a, b = await h.tenant("acme"), await h.tenant("other")
    full = await h.seed(a, 4, status="PAID", total_cents=5000)
    partial = await h.seed(a, 3, status="PARTIALLY_REFUNDED", total_cents=5000, refunded_cents=1000)
    cancelled_paid = await h.seed(a, 2, status="CANCELLED", total_cents=3000)
    unpaid = await h.seed(a, 2, status="PENDING", paid_at=None)
    refunded = await h.seed(a, 2, status="REFUNDED", total_cents=2000, refunded_cents=2000)
    small = await h.seed(a, 2, status="PAID", total_cents=1000, refunded_cents=900)
    foreign = await h.seed(b, 2, status="PAID")
    ids = full + partial + cancelled_paid + unpaid + refunded + small + foreign + [uuid.uuid4()]
    # 2,000 cents each: fits `full` (5000), `partial` (4000 left), `cancelled_paid` (3000); not `small` (100 left).
    op = await h.start(
        a,
        {
            "operation_type": "BULK_REFUND",
            "order_ids": [str(i) for i in ids],
            "parameters": {"reason": "goodwill", "amount_cents": 2000},
        },
    )
    final = await h.wait_end(a, op["id"])
    ok = len(full + partial + cancelled_paid)
    await _check_summary(h, op["id"], final, len(ids), ok, len(ids) - ok)
    assert final["status"] == "PARTIAL_SUCCESS"
    codes = {i.order_id: i.error_code for i in await h.items(op["id"])}
    assert all(codes[i] == "ORDER_NOT_PAID" for i in unpaid)
    assert all(codes[i] == "NOTHING_TO_REFUND" for i in refunded)
    assert all(codes[i] == "AMOUNT_EXCEEDS_REFUNDABLE" for i in small)
    assert all(codes[i] == "ORDER_NOT_FOUND" for i in foreign)
    refunds = await h.refunds(op["id"])
    assert sorted(r.order_id for r in refunds) == sorted(full + partial + cancelled_paid)
    assert sum(r.amount_cents for r in refunds) == 2000 * ok
    orders = await h.orders(full + partial + cancelled_paid + foreign)
    assert all(orders[i].status == "PARTIALLY_REFUNDED" and orders[i].refunded_cents == 2000 for i in full)
    assert all(orders[i].refunded_cents == 3000 for i in partial)
    assert all(orders[i].status == "CANCELLED" for i in cancelled_paid)  # a cancelled order stays cancelled
    assert all(orders[i].refunded_cents == 0 for i in foreign)


async def test_bulk_refund_default_amount_refunds_everything(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant()
    ids = await h.seed(a, 5, status="PARTIALLY_REFUNDED", total_cents=4000, refunded_cents=1500)
    op = await h.start(
        a,
        {
            "operation_type": "BULK_REFUND",
            "filter": {"statuses": ["PARTIALLY_REFUNDED"]},
            "parameters": {"reason": "recall"},
        },
    )
    final = await h.wait_end(a, op["id"])
    assert final["status"] == "COMPLETED"
    await _check_summary(h, op["id"], final, 5, 5, 0)
    orders = await h.orders(ids)
    assert all(o.status == "REFUNDED" and o.refunded_cents == 4000 for o in orders.values())
    assert sum(r.amount_cents for r in await h.refunds(op["id"])) == 5 * 2500


async def test_bulk_update_mixed_selection(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant()
    open_ = await h.seed(a, 4, status="SHIPPED", tags=["old", "keep"], metadata={"a": 1, "nested": {"x": 1}})
    closed = await h.seed(a, 2, status="CANCELLED")
    params = {
        "set": {"note": "gift", "shipping_method": "express"},
        "add_tags": ["vip", "keep"],
        "remove_tags": ["old"],
        "metadata": {"a": None, "nested": {"y": 2}, "b": "z"},
    }
    op = await h.start(
        a,
        {
            "operation_type": "BULK_UPDATE",
            "order_ids": [str(i) for i in open_ + closed],
            "parameters": params,
        },
    )
    final = await h.wait_end(a, op["id"])
    await _check_summary(h, op["id"], final, 6, 4, 2)
    orders = await h.orders(open_ + closed)
    for i in open_:
        o = orders[i]
        assert (o.note, o.shipping_method, o.version) == ("gift", "express", 2)
        assert o.tags == ["keep", "vip"]
        assert o.metadata == {"nested": {"x": 1, "y": 2}, "b": "z"}
    assert all(orders[i].version == 1 for i in closed)
    assert {i.error_code for i in await h.items(op["id"]) if i.status == "FAILED"} == {"ORDER_CLOSED"}


async def test_bulk_export_keeps_rows_in_selection_order(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant()
    ids = await h.seed(a, 6, status="DELIVERED")
    order = list(reversed(ids)) + [uuid.uuid4()]
    op = await h.start(
        a,
        {
            "operation_type": "BULK_EXPORT",
            "order_ids": [str(i) for i in order],
            "parameters": {"format": "jsonl", "fields": ["id", "status", "total_cents"]},
        },
    )
    final = await h.wait_end(a, op["id"])
    assert final["status"] == "PARTIAL_SUCCESS"
    await _check_summary(h, op["id"], final, 7, 6, 1)
    items = [i for i in await h.items(op["id"]) if i.status == "SUCCEEDED"]
    assert [i.result["id"] for i in items] == [str(i) for i in order[:-1]]
    assert all(set(i.result) == {"id", "status", "total_cents"} for i in items)
    orders = await h.orders(ids)
    assert all(o.version == 1 for o in orders.values())  # exporting changes nothing


async def test_all_failures_end_failed(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant()
    op = await h.start(
        a, {"operation_type": "BULK_CANCEL", "order_ids": [str(uuid.uuid4()) for _ in range(3)]}
    )
    final = await h.wait_end(a, op["id"])
    assert final["status"] == "FAILED" and final["failed_count"] == 3
    assert {e["code"] for e in final["errors"]} == {"ORDER_NOT_FOUND"}
    assert all(e["retryable"] is False for e in final["errors"])
