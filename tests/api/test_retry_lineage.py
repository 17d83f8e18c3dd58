"""One lineage per original: a retry of a retry never refunds an order a sibling retry refunded, and
two retries anywhere in one lineage serialise (one 202, one 409), refunds exact."""

from __future__ import annotations

import asyncio

from tests.api.test_retry_once import failed_refund, pay, refunds_of
from tests.harness import Harness


async def test_retry_of_a_retry_and_a_retry_of_the_original_refund_each_order_once(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant()
    # A: every order fails ORDER_NOT_PAID; R1 (a retry of A) fails them again; then they are paid.
    op, ids = await failed_refund(h, a, 5, amount_cents=1000, paid=False)
    r1 = (await a.post(f"/v1/bulk-operations/{op['id']}/retry?all_failed=true")).json()
    r1 = await h.wait_end(a, r1["id"])
    assert (r1["status"], r1["failed_count"], r1["retry_of"]) == ("FAILED", 5, op["id"])
    await pay(h, ids)
    # R2 (A again) and R1' (a retry of R1) at the same moment: one lineage, one lock.
    first, second = await asyncio.gather(
        a.post(f"/v1/bulk-operations/{op['id']}/retry?all_failed=true"),
        a.post(f"/v1/bulk-operations/{r1['id']}/retry?all_failed=true"),
    )
    assert sorted((first.status_code, second.status_code)) == [202, 409], (first.text, second.text)
    won, lost = (first, second) if first.status_code == 202 else (second, first)
    assert won.json()["id"] in lost.json()["detail"], lost.text  # names the live retry
    final = await h.wait_end(a, won.json()["id"])
    assert (final["status"], final["success_count"]) == ("COMPLETED", 5)
    # Later, from either end of the chain: nothing left, nothing refunded twice.
    for source in (op["id"], r1["id"], won.json()["id"]):
        again = await a.post(f"/v1/bulk-operations/{source}/retry?all_failed=true")
        assert again.status_code == 409, again.text
    assert await refunds_of(h, ids) == (5, 5000)
