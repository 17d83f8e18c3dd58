"""While PostgreSQL or the Temporal server is down, the API answers `503` problem+json with
`Retry-After` — a client's cue to repeat the request — never a `500` (found by `bulkops chaos
--seed 1`: reads and controls during a PostgreSQL restart answered 500)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.harness import Harness, Tenant

pytestmark = pytest.mark.faults


def assert_outage(r: httpx.Response) -> None:
    assert r.status_code == 503, (r.request.method, r.request.url.path, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    assert int(r.headers["retry-after"]) > 0
    assert r.json()["status"] == 503


async def requests_during_outage(h: Harness, t: Tenant, op_id: str) -> list[httpx.Response]:
    body = {"operation_type": "BULK_CANCEL", "order_ids": [str(uuid.uuid4())], "parameters": {}}
    return [
        await t.get("/v1/bulk-operations"),
        await t.get(f"/v1/bulk-operations/{op_id}"),
        await t.get(f"/v1/bulk-operations/{op_id}/items"),
        await t.post("/v1/bulk-operations", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}),
        await t.post(f"/v1/bulk-operations/{op_id}/resume"),
        await t.post(f"/v1/bulk-operations/{op_id}/cancel"),
    ]


async def paused_operation(h: Harness) -> tuple[Tenant, str]:
    await h.start_worker()
    t = await h.tenant("outage")
    ids = await h.seed(t, 30)
    # Paced to one order a second: still running when paused, and paused throughout the outage.
    body = {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids], "max_orders_per_second": 1}
    op = await h.start(t, body)
    await h.wait_for(t, op["id"], lambda b: b["status"] == "PROCESSING")
    r = await t.post(f"/v1/bulk-operations/{op['id']}/pause")
    assert r.status_code == 200, r.text
    return t, op["id"]


async def test_postgres_down_answers_503(fault_harness: Harness) -> None:
    h = fault_harness
    h.configure(auth_cache_s=0)  # every request needs the database for its key
    t, op_id = await paused_operation(h)
    assert h.stack.postgres is not None
    await asyncio.to_thread(h.stack.postgres.stop, "immediate")
    try:
        for r in await requests_during_outage(h, t, op_id):
            assert_outage(r)
    finally:
        await asyncio.to_thread(h.stack.postgres.start)
    # Back again: the same requests are answered for real.
    r = await t.get(f"/v1/bulk-operations/{op_id}")
    assert r.status_code == 200 and r.json()["status"] == "PAUSED", r.text
    assert (await t.post(f"/v1/bulk-operations/{op_id}/cancel")).status_code == 200


async def test_temporal_down_answers_503(fault_harness: Harness) -> None:
    h = fault_harness
    # The outage is answered once these run out (5 s and 15 s by default): what matters is the answer.
    h.configure(start_timeout_s=2, control_timeout_s=3)
    t, op_id = await paused_operation(h)
    await asyncio.to_thread(h.stack.temporal.stop)
    try:
        body = {"operation_type": "BULK_CANCEL", "order_ids": [str(uuid.uuid4())], "parameters": {}}
        create = await t.post("/v1/bulk-operations", json=body, headers={"Idempotency-Key": "k1"})
        assert_outage(create)
        assert_outage(await t.post(f"/v1/bulk-operations/{op_id}/resume"))
        # Reads of a running operation fall back to its checkpoint row: answered, not an outage.
        r = await t.get(f"/v1/bulk-operations/{op_id}")
        assert r.status_code == 200 and r.json()["status"] == "PAUSED", r.text
    finally:
        await asyncio.to_thread(h.stack.temporal.start)
    # Nothing was half-started: the refused create, repeated with its key, runs once (200 when the
    # row of the refused start was kept because Temporal could not say whether it had started it).
    again = await t.post("/v1/bulk-operations", json=body, headers={"Idempotency-Key": "k1"})
    assert again.status_code in (200, 202), again.text
    ended = await h.wait_end(t, again.json()["id"])
    assert (ended["status"], ended["failed_count"]) == ("FAILED", 1)  # an unknown order id
    listed = (await t.get("/v1/bulk-operations")).json()["items"]
    assert sorted(op["id"] for op in listed) == sorted([op_id, ended["id"]])
    assert (await t.post(f"/v1/bulk-operations/{op_id}/cancel")).status_code == 200


async def test_a_control_no_worker_takes_in_time_answers_503(harness: Harness) -> None:
    """Found by `bulkops chaos --seed 11 --duration 3600`: a pause or cancel sent while the workers were
    being killed waited out its timeout and answered 500 (the client's "timeout or cancellation
    waiting for update"). It is an outage: 503 with Retry-After, and the control may be repeated."""
    h = harness
    h.configure(control_timeout_s=2)
    t, op_id = await paused_operation(h)
    await h.stop_worker()
    assert_outage(await t.post(f"/v1/bulk-operations/{op_id}/resume"))
    await h.start_worker()
    # The workflow took the resume the worker never answered: repeated, it is refused as done.
    again = await t.post(f"/v1/bulk-operations/{op_id}/resume")
    assert again.status_code in (200, 409), again.text
    assert (await t.post(f"/v1/bulk-operations/{op_id}/cancel")).status_code == 200
    ended = await h.wait_end(t, op_id)
    assert ended["status"] == "CANCELLED"
    resumed = [
        e
        for e in (await t.get(f"/v1/bulk-operations/{op_id}/audit")).json()["items"]
        if e["action"] == "resumed"
    ]
    assert len(resumed) == 1
