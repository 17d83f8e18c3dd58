"""Creating operations: Idempotency-Key, validation (422 problem+json, nothing started), auth."""

from __future__ import annotations

import uuid

import pytest

from bulkops.store.tables import OPERATIONS
from tests.harness import Harness


async def _workflows(h: Harness, tenant_id: str) -> list[object]:
    return [w async for w in h.client.list_workflows(f"TenantId='{tenant_id}'")]


async def test_same_idempotency_key_yields_one_operation(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant()
    ids = [str(i) for i in await h.seed(a, 5)]
    body = {"operation_type": "BULK_CANCEL", "order_ids": ids, "parameters": {"reason": "dup"}}
    first = await a.post("/v1/bulk-operations", json=body, headers={"Idempotency-Key": "k-1"})
    second = await a.post("/v1/bulk-operations", json=body, headers={"Idempotency-Key": "k-1"})
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"]
    assert first.headers["location"].endswith(first.json()["id"])
    other = await a.post(
        "/v1/bulk-operations",
        json={**body, "parameters": {"reason": "other"}},
        headers={"Idempotency-Key": "k-1"},
    )
    assert other.status_code == 409
    assert other.headers["content-type"].startswith("application/problem+json")
    await h.wait_end(a, first.json()["id"])
    assert await h.count(OPERATIONS, OPERATIONS.c.tenant_id == a.id) == 1
    runs = [w async for w in h.client.list_workflows(f"WorkflowId='bulk-op-{first.json()['id']}'")]
    assert len(runs) == 1
    # The key is scoped to the tenant: another tenant may use the same key.
    b = await h.tenant()
    r = await b.post("/v1/bulk-operations", json=body, headers={"Idempotency-Key": "k-1"})
    assert r.status_code == 202 and r.json()["id"] != first.json()["id"]


BAD_BODIES = [
    (
        {"operation_type": "BULK_DELETE", "order_ids": ["00000000-0000-0000-0000-000000000001"]},
        "operation_type",
    ),
    ({"operation_type": "BULK_CANCEL", "order_ids": []}, "order_ids"),
    ({"operation_type": "BULK_CANCEL", "order_ids": [str(uuid.uuid4()) for _ in range(10_001)]}, "order_ids"),
    ({"operation_type": "BULK_CANCEL", "order_ids": ["not-a-uuid"]}, "order_ids"),
    (
        {"operation_type": "BULK_CANCEL", "order_ids": [str(uuid.uuid4())], "filter": {"statuses": ["PAID"]}},
        "exactly one",
    ),
    ({"operation_type": "BULK_CANCEL"}, "exactly one"),
    ({"operation_type": "BULK_CANCEL", "filter": {}, "parameters": {"reason": "x" * 501}}, "reason"),
    ({"operation_type": "BULK_CANCEL", "filter": {}, "parameters": {"bogus": 1}}, "bogus"),
    ({"operation_type": "BULK_REFUND", "filter": {}, "parameters": {"amount_cents": 0}}, "amount_cents"),
    ({"operation_type": "BULK_UPDATE", "filter": {}, "parameters": {}}, "at least one"),
    ({"operation_type": "BULK_EXPORT", "filter": {}, "parameters": {"format": "xml"}}, "format"),
    ({"operation_type": "BULK_EXPORT", "filter": {}, "parameters": {"fields": ["password"]}}, "fields"),
    ({"operation_type": "BULK_CANCEL", "filter": {}, "max_concurrency": 501}, "max_concurrency"),
    (
        {
            "operation_type": "BULK_CANCEL",
            "filter": {},
            "failure_threshold": {"max_failure_ratio": 1.5, "min_processed": 1},
        },
        "max_failure_ratio",
    ),
    ({"operation_type": "BULK_CANCEL", "filter": {"statuses": ["LOST"]}}, "statuses"),
    ({"operation_type": "BULK_CANCEL", "filter": {}, "surprise": True}, "surprise"),
]


@pytest.mark.parametrize(("body", "mentions"), BAD_BODIES)
async def test_bad_bodies_get_422_and_start_nothing(harness: Harness, body: dict, mentions: str) -> None:
    h = harness
    a = await h.tenant()
    r = await a.post("/v1/bulk-operations", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert {"type", "title", "status", "detail", "errors"} <= set(problem)
    assert problem["status"] == 422
    assert mentions in r.text
    assert await h.count(OPERATIONS, OPERATIONS.c.tenant_id == a.id) == 0
    assert await _workflows(h, a.id) == []


async def test_auth_is_required(harness: Harness) -> None:
    h = harness
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        r = await h.http.get("/v1/bulk-operations", headers=headers)
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_other_tenant_gets_404_on_operation_and_order_paths(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a, b = await h.tenant(), await h.tenant()
    ids = await h.seed(a, 3)
    op = await h.start(a, {"operation_type": "BULK_EXPORT", "order_ids": [str(i) for i in ids]})
    await h.wait_end(a, op["id"])
    paths = [
        f"/v1/bulk-operations/{op['id']}",
        f"/v1/bulk-operations/{op['id']}/items",
        f"/v1/orders/{ids[0]}",
    ]
    for p in paths:
        assert (await a.get(p)).status_code == 200
        r = await b.get(p)
        assert r.status_code == 404, p
    for action in ("pause", "resume", "cancel", "retry"):
        assert (await b.post(f"/v1/bulk-operations/{op['id']}/{action}")).status_code == 404
    listed = (await b.get("/v1/bulk-operations")).json()
    assert listed["items"] == []


async def test_list_pagination_and_filters(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant()
    ids = [str(i) for i in await h.seed(a, 2)]
    created = []
    for kind in ("BULK_EXPORT", "BULK_EXPORT", "BULK_UPDATE"):
        params = {"add_tags": ["x"]} if kind == "BULK_UPDATE" else {}
        created.append(
            (await h.start(a, {"operation_type": kind, "order_ids": ids, "parameters": params}))["id"]
        )
    for op_id in created:
        await h.wait_end(a, op_id)
    seen: list[str] = []
    cursor = None
    while True:
        q = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await a.get(f"/v1/bulk-operations{q}")).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(created))  # newest first, each exactly once
    only = (await a.get("/v1/bulk-operations?operation_type=BULK_UPDATE")).json()["items"]
    assert [o["id"] for o in only] == [created[2]]
    assert (await a.get("/v1/bulk-operations?cursor=%%%")).status_code == 400
