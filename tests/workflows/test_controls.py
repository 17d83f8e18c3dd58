"""Operator controls: pause/resume, cancel, invalid transitions, failure threshold, retry, dry run."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import func, select
from temporalio.client import WorkflowHandle

from bulkops.store.tables import BulkOperation, BulkOperationItem, BulkOperationTarget, Order, Refund
from tests.harness import Harness, Tenant, assert_replays, eventually
from tests.safety.keys import audit
from tests.support import FlakyOrders, SlowOrders
from workflows.bulk_operation import CONTROLS_IN_ORDER


async def _slow_cancel(
    h: Harness, *, orders: int, delay: float, max_concurrency: int
) -> tuple[Tenant, dict[str, Any]]:
    """A worker whose orders take `delay` s each, and a running cancel of `orders` new orders."""
    await h.start_worker(SlowOrders(h.order_pool, delay=delay))
    a = await h.tenant()
    ids = await h.seed(a, orders)
    body = {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids]}
    return a, await h.start(a, {**body, "max_concurrency": max_concurrency})


async def test_pause_freezes_counters_and_resume_finishes_exactly(harness: Harness) -> None:
    h = harness
    a, op = await _slow_cancel(h, orders=200, delay=0.05, max_concurrency=4)
    await h.wait_for(a, op["id"], lambda b: b["processed_count"] >= 10)
    r = await a.post(f"/v1/bulk-operations/{op['id']}/pause")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "PAUSED"
    first = (await a.get(f"/v1/bulk-operations/{op['id']}")).json()
    await asyncio.sleep(1.0)
    second = (await a.get(f"/v1/bulk-operations/{op['id']}")).json()
    assert first["status"] == second["status"] == "PAUSED"
    assert first["processed_count"] == second["processed_count"] < 200
    progress = await h.client.get_workflow_handle(f"bulk-op-{op['id']}").query("progress")
    assert progress["in_flight"] == 0
    assert (
        await h.count(BulkOperationItem.__table__, BulkOperationItem.operation_id == uuid.UUID(op["id"]))
        == second["processed_count"]
    )
    assert (await h.summary_row(op["id"])).status == "PAUSED"
    # Invalid transitions answer 409 and change nothing.
    assert (await a.post(f"/v1/bulk-operations/{op['id']}/pause")).status_code == 409
    r = await a.post(f"/v1/bulk-operations/{op['id']}/resume")
    assert r.status_code == 200 and r.json()["status"] == "PROCESSING"
    bad = await a.post(f"/v1/bulk-operations/{op['id']}/resume")
    assert bad.status_code == 409 and bad.headers["content-type"].startswith("application/problem+json")
    final = await h.wait_end(a, op["id"])
    assert (final["status"], final["processed_count"], final["success_count"]) == ("COMPLETED", 200, 200)
    assert len(await h.items(op["id"])) == 200
    for action in ("pause", "resume", "cancel"):
        r = await a.post(f"/v1/bulk-operations/{op['id']}/{action}")
        assert r.status_code == 409, (action, r.text)
    assert (await h.summary_row(op["id"])).status == "COMPLETED"


async def test_a_resume_that_overtakes_a_pause_leaves_both_answered_and_audited_in_order(
    harness: Harness,
) -> None:
    """A pause shows PAUSED at once but answers once its in-flight orders have finished; a resume sent
    in between (the console offers it as soon as the page says PAUSED) must not leave the pause waiting
    for an end that never comes, nor audit it after the resume."""
    h = harness
    a, op = await _slow_cancel(h, orders=4, delay=4.0, max_concurrency=2)
    handle = h.client.get_workflow_handle(f"bulk-op-{op['id']}")
    await eventually(lambda: _in_flight(handle), timeout=30)
    pause = asyncio.create_task(a.post(f"/v1/bulk-operations/{op['id']}/pause"))
    await h.wait_for(a, op["id"], lambda b: b["status"] == "PAUSED")
    assert not pause.done()  # the two orders in flight take 4 s: the resume overtakes the pause
    resume = await a.post(f"/v1/bulk-operations/{op['id']}/resume")
    assert resume.status_code == 200 and resume.json()["status"] == "PROCESSING", resume.text
    paused = await pause
    assert paused.status_code == 200, paused.text
    final = await h.wait_end(a, op["id"])
    assert (final["status"], final["success_count"]) == ("COMPLETED", 4)
    assert len(await h.items(op["id"])) == 4
    assert [e["action"] for e in await audit(a, op["id"])] == [
        "created",
        "started",
        "paused",
        "resumed",
        "ended",
    ]
    assert (await h.summary_row(op["id"])).status == "COMPLETED"
    # The handlers' interleaving (the resume waits for the pause's turn) replays deterministically.
    history = await handle.fetch_history()
    markers = [
        e.marker_recorded_event_attributes
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
    ]
    patches = [p.data for m in markers for d in m.details.values() for p in d.payloads]
    assert any(CONTROLS_IN_ORDER.encode() in data for data in patches), markers  # the new branch ran
    await assert_replays(history)


async def _in_flight(handle: WorkflowHandle[Any, Any]) -> bool:
    progress = await handle.query("progress")
    return bool(progress["in_flight"] == 2)


async def test_cancel_mid_run_touches_nothing_unprocessed(harness: Harness) -> None:
    h = harness
    await h.start_worker(SlowOrders(h.order_pool, delay=0.05))
    a = await h.tenant()
    ids = await h.seed(a, 200, status="PAID", total_cents=1000)
    op = await h.start(
        a,
        {
            "operation_type": "BULK_REFUND",
            "order_ids": [str(i) for i in ids],
            "max_concurrency": 4,
            "parameters": {"reason": "x"},
        },
    )
    await h.wait_for(a, op["id"], lambda b: b["processed_count"] >= 10)
    r = await a.post(f"/v1/bulk-operations/{op['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CANCELLED"
    assert (await a.post(f"/v1/bulk-operations/{op['id']}/cancel")).status_code == 409
    final = await h.wait_end(a, op["id"])
    assert final["status"] == "CANCELLED"
    assert 10 <= final["processed_count"] < 200
    items = await h.items(op["id"])
    assert len(items) == final["processed_count"] == len({i.order_id for i in items})
    processed = {i.order_id for i in items}
    orders = await h.orders(ids)
    refunds = await h.refunds(op["id"])
    assert {r.order_id for r in refunds} == processed
    for oid, o in orders.items():
        assert (o.refunded_cents == 1000) == (oid in processed)
    row = await h.summary_row(op["id"])
    assert (row.status, row.processed_count) == ("CANCELLED", final["processed_count"])


async def test_failure_threshold_trips_at_the_configured_point(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant()
    good = await h.seed(a, 10, status="PAID")
    bad = await h.seed(a, 100, status="SHIPPED")  # not cancellable
    ids = good + bad
    op = await h.start(
        a,
        {
            "operation_type": "BULK_CANCEL",
            "order_ids": [str(i) for i in ids],
            "max_concurrency": 1,
            "failure_threshold": {"max_failure_ratio": 0.5, "min_processed": 20},
        },
    )
    final = await h.wait_end(a, op["id"])
    assert (final["status"], final["failure_reason"]) == ("FAILED", "FAILURE_THRESHOLD_EXCEEDED")
    # 10 good then failures: at 20 processed, 10/20 = 0.5 is not > 0.5; at 21, 11/21 > 0.5 trips.
    assert (final["processed_count"], final["success_count"], final["failed_count"]) == (21, 10, 11)
    assert len(await h.items(op["id"])) == 21
    row = await h.summary_row(op["id"])
    assert (row.status, row.failure_reason, row.processed_count) == (
        "FAILED",
        "FAILURE_THRESHOLD_EXCEEDED",
        21,
    )


async def test_retry_reruns_exactly_the_retryable_failures(harness: Harness) -> None:
    h = harness
    a = await h.tenant()
    ok = await h.seed(a, 5, status="PAID")
    flaky = await h.seed(a, 3, status="PAID")
    shipped = await h.seed(a, 2, status="SHIPPED")
    activities = FlakyOrders(h.order_pool, always_fail=set(flaky))
    await h.start_worker(activities)
    op = await h.start(
        a, {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ok + flaky + shipped]}
    )
    # Not ended yet → 409 (it may also have ended already on a fast machine; then skip that check).
    first = await h.wait_end(a, op["id"])
    assert (first["status"], first["success_count"], first["failed_count"]) == ("PARTIAL_SUCCESS", 5, 5)
    items = {i.order_id: i for i in await h.items(op["id"])}
    assert all(items[i].error_code == "RETRIES_EXHAUSTED" and items[i].retryable for i in flaky)
    assert all(activities.attempts[i] == h.settings.activity_max_attempts for i in flaky)
    assert all(items[i].error_code == "ORDER_NOT_CANCELLABLE" and not items[i].retryable for i in shipped)

    activities.always_fail.clear()  # the gateway is back
    r = await a.post(f"/v1/bulk-operations/{op['id']}/retry")
    assert r.status_code == 202, r.text
    retry = r.json()
    assert retry["retry_of"] == op["id"] and retry["id"] != op["id"]
    final = await h.wait_end(a, retry["id"])
    assert (final["status"], final["total_count"], final["success_count"]) == ("COMPLETED", 3, 3)
    assert sorted(i.order_id for i in await h.items(retry["id"])) == sorted(flaky)

    r = await a.post(f"/v1/bulk-operations/{op['id']}/retry?all_failed=true")
    assert r.status_code == 202, r.text
    final = await h.wait_end(a, r.json()["id"])
    # Only the 2 shipped: the 3 flaky ones were retried successfully already, never again.
    assert final["total_count"] == 2
    codes = sorted(i.error_code for i in await h.items(r.json()["id"]))
    assert codes == ["ORDER_NOT_CANCELLABLE"] * 2

    # The first retry has no failures at all → 409.
    r = await a.post(f"/v1/bulk-operations/{retry['id']}/retry?all_failed=true")
    assert r.status_code == 409


async def test_retry_of_running_operation_is_409(harness: Harness) -> None:
    h = harness
    a, op = await _slow_cancel(h, orders=100, delay=0.05, max_concurrency=2)
    r = await a.post(f"/v1/bulk-operations/{op['id']}/retry")
    assert r.status_code == 409 and "not ended" in r.json()["detail"]
    await a.post(f"/v1/bulk-operations/{op['id']}/cancel")
    await h.wait_end(a, op["id"])


async def test_dry_run_counts_by_code_and_writes_nothing(harness: Harness) -> None:
    h = harness
    a = await h.tenant()
    await h.seed(a, 7, status="PAID")
    await h.seed(a, 3, status="SHIPPED")
    await h.seed(a, 2, status="CANCELLED")
    tables = [
        BulkOperation.__table__,
        BulkOperationTarget.__table__,
        BulkOperationItem.__table__,
        Refund.__table__,
    ]
    before = [await h.count(t, True) for t in tables]  # type: ignore[arg-type]
    r = await a.post(
        "/v1/bulk-operations",
        json={
            "operation_type": "BULK_CANCEL",
            "filter": {"statuses": ["PAID", "SHIPPED", "CANCELLED"]},
            "dry_run": True,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["matched_count"], body["would_fail_count"]) == (12, 5)
    assert body["would_fail_by_code"] == {"ORDER_NOT_CANCELLABLE": 3, "ALREADY_CANCELLED": 2}
    assert len(body["sample"]) == 10
    ids = [str(uuid.uuid4())]
    r = await a.post(
        "/v1/bulk-operations", json={"operation_type": "BULK_REFUND", "order_ids": ids, "dry_run": True}
    )
    assert r.json()["would_fail_by_code"] == {"ORDER_NOT_FOUND": 1}
    assert [await h.count(t, True) for t in tables] == before  # type: ignore[arg-type]
    async with h.sessionmaker() as s:
        assert await s.scalar(select(func.max(Order.version)).where(Order.tenant_id == a.id)) == 1
    workflows = [w async for w in h.client.list_workflows(f"TenantId='{a.id}'")]
    assert workflows == []
