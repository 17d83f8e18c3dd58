"""An operation whose workflow was terminated from outside (Temporal UI or CLI) never writes its
summary row: the worker's sweep does, from the outcome rows, with no API call at all."""

from __future__ import annotations

import asyncio
import uuid

from bulkops.store.tables import Order
from tests.harness import Harness
from tests.support import SlowOrders

ORDERS = Order.__table__


async def test_a_terminated_operation_gets_its_summary_row_from_the_worker(harness: Harness) -> None:
    h = harness
    h.configure(activity_timeout_s=2.0, orphan_sweep_s=0.5)
    await h.start_worker(SlowOrders(h.order_pool, delay=0.05))
    a = await h.tenant()
    ids = await h.seed(a, 300)
    unknown = [uuid.uuid4() for _ in range(3)]
    body = {
        "operation_type": "BULK_CANCEL",
        "order_ids": [str(i) for i in unknown + ids],
        "max_concurrency": 2,
    }
    op = await h.start(a, body)
    await h.wait_for(a, op["id"], lambda x: x["processed_count"] >= 10)
    await h.client.get_workflow_handle(op["workflow_id"]).terminate("operator pulled the plug")

    # From here on no API call: only the database is watched.
    async with asyncio.timeout(30):
        while (row := await h.summary_row(op["id"])).status != "CANCELLED":  # noqa: ASYNC110 - the database is polled
            await asyncio.sleep(0.2)
    await asyncio.sleep(1)  # nothing may commit after the row was closed
    items = await h.items(op["id"])
    assert row.failure_reason == "WORKFLOW_TERMINATED" and row.completed_at is not None
    assert 10 <= row.processed_count == len(items) < 303
    assert row.failed_count == 3 and row.success_count == len(items) - 3
    assert sorted(e["order_id"] for e in row.errors) == sorted(str(u) for u in unknown)
    assert await h.count(ORDERS, ORDERS.c.id.in_(ids), ORDERS.c.status == "CANCELLED") == row.success_count

    # Ended now: the API answers the summary, and its failures can be retried.
    final = (await a.get(f"/v1/bulk-operations/{op['id']}")).json()
    assert (final["status"], final["progress_source"], final["processed_count"]) == (
        "CANCELLED",
        "final",
        len(items),
    )
    retry = await a.post(f"/v1/bulk-operations/{op['id']}/retry", params={"all_failed": "true"})
    assert retry.status_code == 202, retry.text
    again = await h.wait_end(a, retry.json()["id"])
    assert (again["total_count"], again["failed_count"], again["retry_of"]) == (3, 3, op["id"])


async def test_reads_of_a_terminated_operation_write_nothing(harness: Harness) -> None:
    """No worker (so no sweep): reading the operation, however often and however late, leaves its row
    as it was — reads never close it, nor signal anyone."""
    h = harness
    h.configure(activity_timeout_s=0.5, progress_query_timeout_s=0.5)
    a = await h.tenant()
    ids = await h.seed(a, 3)
    op = await h.start(a, {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids]})
    await h.client.get_workflow_handle(op["workflow_id"]).terminate("from outside")
    await asyncio.sleep(1.0)  # past the grace after which the sweep would close it
    before = await h.summary_row(op["id"])
    for _ in range(3):
        body = (await a.get(f"/v1/bulk-operations/{op['id']}")).json()
        assert (body["status"], body["progress_source"]) == ("PENDING", "checkpoint"), body
    assert await h.summary_row(op["id"]) == before
