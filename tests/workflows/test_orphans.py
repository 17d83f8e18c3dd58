"""An operation whose workflow was terminated from outside (Temporal UI or CLI) never writes its
summary row: the worker's sweep does, from the outcome rows, with no API call at all."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from temporalio.service import RPCError, RPCStatusCode

from bulkops.domain.model import OperationType
from bulkops.domain.people import Actor
from bulkops.store.operations import NewOperation, insert_operation
from bulkops.store.selection import insert_ids
from bulkops.store.tables import OPERATIONS, REFUNDS, Order
from tests.harness import Harness, Tenant
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


def _refund_of(
    tenant: Tenant, ids: list[uuid.UUID], reason: str, idempotency_key: str | None = None
) -> NewOperation:
    """The row an API process commits for a refund of `ids` (what it writes before the start)."""
    return NewOperation(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        operation_type=OperationType.BULK_REFUND,
        parameters={"reason": reason},
        selection={"order_ids_count": len(ids)},
        max_concurrency=4,
        failure_threshold=None,
        initiated_by="olga",
        created_by=Actor(name="olga"),
        notify_url=None,
        idempotency_key=idempotency_key,
        request_hash="h" * 64,
        total_count=len(ids),
    )


async def test_a_committed_operation_whose_start_went_unconfirmed_runs_once(harness: Harness) -> None:
    """Its API process died between commit and start (or Temporal could not say whether it had started
    it, and the client never repeated the request): the row has no workflow. Found by the short soak
    (seed 2026: "still PENDING"). The worker's sweep starts it once it is older than a start may take,
    and it runs exactly once; a repeat of the request then finds it."""
    h = harness
    h.configure(orphan_sweep_s=0.5, start_timeout_s=0.5)
    a = await h.tenant()
    ids = await h.seed(a, 20, status="PAID", total_cents=300)
    new = _refund_of(a, ids, "unconfirmed", idempotency_key="unconfirmed-1")
    async with h.sessionmaker() as session, session.begin():  # what the API committed before it died
        await insert_operation(session, new)
        await insert_ids(session, new.id, ids)
    await h.start_worker()
    async with asyncio.timeout(60):
        while (row := await h.summary_row(str(new.id))).status != "COMPLETED":  # noqa: ASYNC110 - the database is polled
            await asyncio.sleep(0.2)
    assert (row.processed_count, row.success_count, row.failed_count) == (20, 20, 0)
    async with h.sessionmaker() as session:
        refunds = (
            await session.execute(
                select(func.count(), func.sum(REFUNDS.c.amount_cents)).where(REFUNDS.c.operation_id == new.id)
            )
        ).one()
    assert tuple(refunds) == (20, 20 * 300)
    # The sweep sees it ended: nothing starts twice (a workflow id is never reused).
    await asyncio.sleep(2)
    desc = await h.client.get_workflow_handle(row.workflow_id).describe()
    assert desc.status is not None and desc.status.name == "COMPLETED"


async def test_an_operation_that_ran_is_never_started_again(harness: Harness) -> None:
    """A row that its workflow already ran (PROCESSING, `started_at` set) has no workflow only when its
    history is gone (deleted, another cluster): the sweep leaves it alone, since starting it again would
    run an operation an operator may have stopped. Found by the retention test, whose PROCESSING row
    (no workflow, created a year ago) got `started` and `ended` events when a sweep came round."""
    h = harness
    h.configure(orphan_sweep_s=0.5, start_timeout_s=0.5)
    a = await h.tenant()
    ids = await h.seed(a, 5, status="PAID", total_cents=300)
    new = _refund_of(a, ids, "ran")
    long_ago = datetime.now(UTC) - timedelta(days=1)
    async with h.sessionmaker() as session, session.begin():
        await insert_operation(session, new)
        await insert_ids(session, new.id, ids)
        await session.execute(
            OPERATIONS.update()
            .where(OPERATIONS.c.id == new.id)
            .values(status="PROCESSING", created_at=long_ago, started_at=long_ago)
        )
    await h.start_worker()
    await asyncio.sleep(3)  # six sweeps
    row = await h.summary_row(str(new.id))
    assert (row.status, row.processed_count) == ("PROCESSING", 0)
    with pytest.raises(RPCError) as err:
        await h.client.get_workflow_handle(row.workflow_id).describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND
    async with h.sessionmaker() as session:
        refunds = await session.scalar(select(func.count()).where(REFUNDS.c.operation_id == new.id))
    assert refunds == 0
