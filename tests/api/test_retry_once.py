"""A double click on retry refunds once: concurrent retries of one failed operation, and the same
retry twice with one Idempotency-Key, produce one refund per order."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select, update

from bulkops.store.tables import ORDERS, REFUNDS
from tests.harness import Harness, Tenant


async def failed_refund(
    h: Harness, a: Tenant, n: int, *, amount_cents: int = 100, paid: bool = True
) -> tuple[dict, list[uuid.UUID]]:
    """A BULK_REFUND of `amount_cents` over n unpaid orders (n times ORDER_NOT_PAID); then the orders
    are paid (unless not `paid`)."""
    ids = await h.seed(a, n, status="PENDING", paid_at=None, total_cents=5000)
    body = {
        "operation_type": "BULK_REFUND",
        "order_ids": [str(i) for i in ids],
        "parameters": {"amount_cents": amount_cents},
    }
    op = await h.wait_end(a, (await h.start(a, body))["id"])
    assert (op["status"], op["failed_count"]) == ("FAILED", n)
    if paid:
        await pay(h, ids)
    return op, ids


async def pay(h: Harness, ids: list[uuid.UUID]) -> None:
    async with h.sessionmaker() as s, s.begin():
        await s.execute(update(ORDERS).where(ORDERS.c.id.in_(ids)).values(status="PAID", paid_at=func.now()))


async def refunds_of(h: Harness, ids: list[uuid.UUID]) -> tuple[int, int]:
    async with h.sessionmaker() as s:
        count, total = (
            await s.execute(
                select(func.count(), func.coalesce(func.sum(REFUNDS.c.amount_cents), 0)).where(
                    REFUNDS.c.order_id.in_(ids)
                )
            )
        ).one()
    return count, total


async def test_two_retries_at_once_refund_each_order_once(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant()
    op, ids = await failed_refund(h, a, 100)
    path = f"/v1/bulk-operations/{op['id']}/retry?all_failed=true"
    first, second = await asyncio.gather(a.post(path), a.post(path))
    assert sorted((first.status_code, second.status_code)) == [202, 409], (first.text, second.text)
    won, lost = (first, second) if first.status_code == 202 else (second, first)
    assert lost.headers["content-type"].startswith("application/problem+json")
    assert won.json()["id"] in lost.json()["detail"]  # names the live retry
    final = await h.wait_end(a, won.json()["id"])
    assert (final["status"], final["total_count"], final["success_count"]) == ("COMPLETED", 100, 100)
    assert await refunds_of(h, ids) == (100, 10_000)
    # The retry succeeded: nothing is left to retry, whichever failures are asked for.
    again = await a.post(path)
    assert again.status_code == 409 and "already" in again.json()["detail"], again.text
    assert (await a.post(f"/v1/bulk-operations/{op['id']}/retry")).status_code == 409
    assert await refunds_of(h, ids) == (100, 10_000)


async def test_the_same_retry_twice_with_one_key_is_one_operation(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant()
    op, ids = await failed_refund(h, a, 50)
    path = f"/v1/bulk-operations/{op['id']}/retry?all_failed=true"
    key = {"Idempotency-Key": f"retry-{uuid.uuid4()}"}
    first, second = await asyncio.gather(a.post(path, headers=key), a.post(path, headers=key))
    assert sorted((first.status_code, second.status_code)) == [200, 202], (first.text, second.text)
    assert first.json()["id"] == second.json()["id"]
    final = await h.wait_end(a, first.json()["id"])
    assert (final["total_count"], final["success_count"]) == (50, 50)
    # The same key later: the same operation, nothing new; with another request: 409.
    late = await a.post(path, headers=key)
    assert (late.status_code, late.json()["id"], late.json()["status"]) == (200, final["id"], "COMPLETED")
    other = await a.post(f"/v1/bulk-operations/{op['id']}/retry", headers=key)
    assert other.status_code == 409, other.text
    assert await refunds_of(h, ids) == (50, 5_000)
    retries = await h.scalar(
        "SELECT count(*) FROM bulk_operations WHERE retry_of = :o", o=uuid.UUID(op["id"])
    )
    assert retries == 1
