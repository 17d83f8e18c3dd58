"""Revert of a BULK_UPDATE: the exact previous values come back on the orders nobody touched since,
an order changed in between fails ORDER_CHANGED_SINCE and is left alone, and a second revert is 409
(also when two arrive at once)."""

from __future__ import annotations

import asyncio

from sqlalchemy import update

from bulkops.store.tables import ORDERS
from tests.harness import Harness
from tests.safety.keys import audit


async def test_revert_restores_previous_values_once(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant()
    ids = await h.seed(a, 30, note="n0", shipping_method="std", tags=["a"], metadata={"k": 1, "keep": True})
    cancelled = await h.seed(a, 2, status="CANCELLED")
    before = await h.orders(ids)
    op = await h.start(
        a,
        {
            "operation_type": "BULK_UPDATE",
            "order_ids": [str(i) for i in ids + cancelled],
            "parameters": {
                "set": {"note": "new"},
                "add_tags": ["b"],
                "remove_tags": ["a"],
                "metadata": {"k": 2},
            },
        },
    )
    r = await a.post(f"/v1/bulk-operations/{op['id']}/revert")
    assert r.status_code == 409, r.text  # not ended yet
    done = await h.wait_end(a, op["id"])
    assert (done["success_count"], done["failed_count"]) == (30, 2)
    changed = ids[:5]
    async with h.sessionmaker() as session, session.begin():
        await session.execute(
            update(ORDERS)
            .where(ORDERS.c.id.in_(changed))
            .values(note="by hand", version=ORDERS.c.version + 1)
        )

    first, second = await asyncio.gather(
        a.post(f"/v1/bulk-operations/{op['id']}/revert"), a.post(f"/v1/bulk-operations/{op['id']}/revert")
    )
    assert sorted([first.status_code, second.status_code]) == [202, 409], (first.text, second.text)
    revert = (first if first.status_code == 202 else second).json()
    assert revert["revert_of"] == op["id"] and revert["total_count"] == 30
    final = await h.wait_end(a, revert["id"])
    assert (final["status"], final["success_count"], final["failed_count"]) == ("PARTIAL_SUCCESS", 25, 5)
    assert {e["code"] for e in final["errors"]} == {"ORDER_CHANGED_SINCE"}
    assert {e["order_id"] for e in final["errors"]} == {str(i) for i in changed}
    after = await h.orders(ids)
    for i in ids[5:]:
        o, was = after[i], before[i]
        assert (o.note, o.shipping_method, o.tags, o.metadata) == (
            was.note,
            was.shipping_method,
            ["a"],
            was.metadata,
        )
        assert o.version == 3
    for i in changed:
        assert (after[i].note, after[i].tags, after[i].version) == ("by hand", ["b"], 3)
    assert (await a.post(f"/v1/bulk-operations/{op['id']}/revert")).status_code == 409
    assert (await a.post(f"/v1/bulk-operations/{revert['id']}/retry?all_failed=true")).status_code == 409
    assert [e["action"] for e in await audit(a, op["id"])][-1] == "reverted"
    # Only an update can be reverted.
    cancel = await h.start(a, {"operation_type": "BULK_CANCEL", "order_ids": [str(cancelled[0])]})
    await h.wait_end(a, cancel["id"])
    assert (await a.post(f"/v1/bulk-operations/{cancel['id']}/revert")).status_code == 409


async def test_revert_takes_an_idempotency_key(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant()
    ids = await h.seed(a, 4, note="before")
    body = {"operation_type": "BULK_UPDATE", "order_ids": [str(i) for i in ids]}
    op = await h.wait_end(a, (await h.start(a, {**body, "parameters": {"set": {"note": "x"}}}))["id"])
    path, key = f"/v1/bulk-operations/{op['id']}/revert", {"Idempotency-Key": "revert-once"}
    first, second = await asyncio.gather(a.post(path, headers=key), a.post(path, headers=key))
    assert sorted([first.status_code, second.status_code]) == [200, 202], (first.text, second.text)
    assert first.json()["id"] == second.json()["id"]
    final = await h.wait_end(a, first.json()["id"])
    late = await a.post(path, headers=key)
    assert (late.status_code, late.json()["id"]) == (200, final["id"])
    # The same key with another request (a retry) is a conflict; without a key, already reverted.
    assert (await a.post(f"/v1/bulk-operations/{op['id']}/retry", headers=key)).status_code == 409
    assert (await a.post(path)).status_code == 409
    assert {o.note for o in (await h.orders(ids)).values()} == {"before"}
