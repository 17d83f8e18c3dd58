"""Per-tenant limits: each answers 429 problem+json with Retry-After at its threshold, holds under
concurrent requests, and lets the tenant in again once the reason is gone."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from temporalio import activity

import bulkops.worker
from activities.contracts import SET_STATUS, SetStatusInput
from activities.operations import OperationActivities
from bulkops.domain.model import OperationStatus
from bulkops.store.tables import OPERATIONS
from tests.harness import Harness, Tenant
from tests.support import SlowOrders


class HeldProcessing(OperationActivities):
    """Holds the write of an operation's PROCESSING status until `release` is set."""

    writing: asyncio.Event
    release: asyncio.Event

    @activity.defn(name=SET_STATUS)
    async def set_status(self, inp: SetStatusInput) -> None:
        if inp.status == OperationStatus.PROCESSING:
            self.writing.set()
            await self.release.wait()
        await super().set_status(inp)


def cancel_body(ids: list[uuid.UUID], **over: Any) -> dict[str, Any]:
    return {
        "operation_type": "BULK_CANCEL",
        "order_ids": [str(i) for i in ids],
        "parameters": {"reason": "x"},
        **over,
    }


def assert_429(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 429 and r.json()["title"] == "Too Many Requests"
    return int(r.headers["retry-after"])


async def created(h: Harness, t: Tenant) -> int:
    return await h.count(OPERATIONS, OPERATIONS.c.tenant_id == t.id)


async def test_creates_per_minute(harness: Harness) -> None:
    h = harness
    h.configure(tenant_creates_per_minute=3)
    t = await h.tenant()
    ids = await h.seed(t, 1)
    # Five at once for three places: the tenant's row lock lets exactly three in.
    answers = await asyncio.gather(*(t.post("/v1/bulk-operations", json=cancel_body(ids)) for _ in range(5)))
    assert sorted(r.status_code for r in answers) == [202, 202, 202, 429, 429]
    assert await created(h, t) == 3
    retry_after = assert_429(await t.post("/v1/bulk-operations", json=cancel_body(ids)))
    assert 1 <= retry_after <= 60
    # A minute later (the window is the rows' own created_at) the tenant may create again.
    async with h.sessionmaker() as session, session.begin():
        await session.execute(
            update(OPERATIONS)
            .where(OPERATIONS.c.tenant_id == t.id)
            .values(created_at=OPERATIONS.c.created_at - timedelta(seconds=61))
        )
    r = await t.post("/v1/bulk-operations", json=cancel_body(ids))
    assert r.status_code == 202, r.text
    assert await created(h, t) == 4
    # Another tenant never shared the budget.
    other = await h.tenant()
    other_ids = await h.seed(other, 1)
    assert (await other.post("/v1/bulk-operations", json=cancel_body(other_ids))).status_code == 202
    # The tenant's policy (admin keys) overrides the deployment's default for that tenant alone.
    policy = await other.http.put(
        "/v1/tenant/policy",
        json={"max_creates_per_minute": 1},
        headers={"Authorization": f"Bearer {other.api_key}"},
    )
    assert policy.status_code == 200 and policy.json()["max_creates_per_minute"] == 1
    assert_429(await other.post("/v1/bulk-operations", json=cancel_body(other_ids)))


async def test_waiting_operations_and_the_concurrency_ceiling(harness: Harness) -> None:
    h = harness
    h.configure(tenant_max_running=1, tenant_max_waiting=2, tenant_max_concurrency=100)
    # Slow enough (60 orders, 10 at a time, 2 s each) that the running one is still running when it
    # is cancelled below, seconds later.
    await h.start_worker(SlowOrders(h.order_pool, delay=2.0))
    t = await h.tenant()
    ids = await h.seed(t, 100)
    running = await h.start(t, cancel_body(ids[40:], max_concurrency=10))
    await h.wait_for(t, running["id"], lambda b: b["status"] == "PROCESSING")
    # Waiting: two may queue behind the running one, the third is refused.
    waiting = [await h.start(t, cancel_body([i], max_concurrency=10)) for i in ids[20:22]]
    assert [w["status"] for w in waiting] == ["PENDING", "PENDING"]
    assert_429(await t.post("/v1/bulk-operations", json=cancel_body([ids[22]], max_concurrency=10)))
    cancelled = await t.post(f"/v1/bulk-operations/{waiting[0]['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    third = await t.post("/v1/bulk-operations", json=cancel_body([ids[22]], max_concurrency=60))
    assert third.status_code == 202, third.text

    # Concurrency: 10 + 10 + 60 of 100 are taken by operations that have not ended.
    assert_429(await t.post("/v1/bulk-operations", json=cancel_body([ids[23]], max_concurrency=21)))
    # Alone above the ceiling: waiting cannot help, so it is a 422 on the field.
    too_big = await t.post("/v1/bulk-operations", json=cancel_body([ids[23]], max_concurrency=101))
    assert too_big.status_code == 422 and too_big.json()["errors"][0]["loc"] == ["body", "max_concurrency"]
    stopped = await t.post(f"/v1/bulk-operations/{running['id']}/cancel")
    assert stopped.status_code == 200, stopped.text
    await h.wait_end(t, running["id"])
    # The running operation's 10 are free again (and its slot went to the next one in line).
    h.configure(tenant_max_waiting=10)
    r = await t.post("/v1/bulk-operations", json=cancel_body([ids[23]], max_concurrency=21))
    assert r.status_code == 202, r.text
    assert await created(h, t) == 5  # every 429 and 422 left nothing behind


async def test_what_readers_see_running_is_not_counted_as_waiting(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit counts rows, readers see the workflow: the workflow must not show PROCESSING before
    its row says so, or a reader who saw it start is refused for it (seen under load as the limits
    test's flake). The row's PROCESSING is held back here to open that window for sure."""
    h = harness
    h.configure(tenant_max_running=1, tenant_max_waiting=1)
    writing, release = asyncio.Event(), asyncio.Event()
    monkeypatch.setattr(HeldProcessing, "writing", writing, raising=False)
    monkeypatch.setattr(HeldProcessing, "release", release, raising=False)
    monkeypatch.setattr(bulkops.worker, "OperationActivities", HeldProcessing)
    await h.start_worker()
    t = await h.tenant()
    ids = await h.seed(t, 2)
    first = await h.start(t, cancel_body(ids[:1]))
    await asyncio.wait_for(writing.wait(), timeout=60)  # slot granted, selection snapshotted
    view = (await t.get(f"/v1/bulk-operations/{first['id']}")).json()
    async with h.sessionmaker() as session:
        row_status = await session.scalar(
            select(OPERATIONS.c.status).where(OPERATIONS.c.id == uuid.UUID(first["id"]))
        )
    # Readers and the limit agree: it is still waiting, so the tenant's one waiting place is taken.
    assert (view["status"], row_status) == ("PENDING", "PENDING")
    assert_429(await t.post("/v1/bulk-operations", json=cancel_body(ids[1:])))
    release.set()
    await h.wait_for(t, first["id"], lambda b: b["status"] != "PENDING")
    # Seen running (or already ended): nothing waits, so the place is free at once.
    r = await t.post("/v1/bulk-operations", json=cancel_body(ids[1:]))
    assert r.status_code == 202, r.text
