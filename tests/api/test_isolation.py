"""Tenant isolation: another tenant's ids answer exactly like unknown ids, another tenant's operations
touch nothing of ours, and a missing, wrong or revoked key gets 401 before anything else happens."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from bulkops.service.auth import add_key, revoke_key
from bulkops.store.tables import Refund
from tests.harness import ORDERS, Harness, Tenant

PROBLEM = "application/problem+json"
OP = "/v1/bulk-operations/{id}"
# Every /v1 route that takes an operation id, with what its owner gets on an ended BULK_EXPORT
# operation without failures: proof that the route exists and does real work for the right key.
OPERATION_ROUTES: list[tuple[str, str, int]] = [
    ("GET", OP, 200),
    ("GET", OP + "/items", 200),
    ("GET", OP + "/items?status=FAILED", 200),
    ("GET", OP + "/events", 200),
    ("GET", OP + "/export", 200),
    ("POST", OP + "/pause", 409),
    ("POST", OP + "/resume", 409),
    ("POST", OP + "/cancel", 409),
    ("POST", OP + "/retry", 409),
    ("POST", OP + "/retry?all_failed=true", 409),
]
ORDER_ROUTE = "/v1/orders/{id}"


async def call(http: httpx.AsyncClient, method: str, path: str, key: str | None, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    headers.update(kw.pop("headers", {}))
    return await http.request(method, path, headers=headers, **kw)


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.request.method, r.request.url, r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert body["status"] == status and body["type"] and body["title"] and body["detail"]
    return body  # type: ignore[no-any-return]


async def assert_like_unknown(h: Harness, method: str, path: str, tenant: Tenant, foreign_id: Any) -> None:
    foreign = await call(h.http, method, path.format(id=foreign_id), tenant.api_key)
    unknown = await call(h.http, method, path.format(id=uuid.uuid4()), tenant.api_key)
    assert_problem(foreign, 404)
    assert_problem(unknown, 404)
    # Byte for byte: no field, header or wording tells "exists elsewhere" from "does not exist".
    assert foreign.content == unknown.content, (path, foreign.text, unknown.text)
    assert dict(foreign.headers) == dict(unknown.headers), path


async def test_foreign_ids_answer_exactly_like_unknown_ids(harness: Harness) -> None:
    h = harness
    a, b = await h.tenant("iso-a"), await h.tenant("iso-b")
    a_orders = await h.seed(a, 4)
    b_orders = await h.seed(b, 2)
    # An operation of A that is accepted but not processing (no worker yet): B must not move it.
    waiting = await h.start(
        a,
        {
            "operation_type": "BULK_CANCEL",
            "order_ids": [str(i) for i in a_orders[:2]],
            "parameters": {"reason": "a's own"},
        },
    )
    for method, path, _ in OPERATION_ROUTES:
        if path.endswith("/events"):
            continue  # A's own stream of an unfinished operation never ends; checked below on an ended one
        await assert_like_unknown(h, method, path, b, waiting["id"])

    await h.start_worker()
    ended = await h.start(
        a,
        {
            "operation_type": "BULK_EXPORT",
            "order_ids": [str(i) for i in a_orders],
            "parameters": {"format": "jsonl"},
        },
    )
    await h.wait_end(a, ended["id"])
    final = await h.wait_end(a, waiting["id"])
    # B's pause / cancel attempts above changed nothing: A's operation ran to its end untouched.
    assert (final["status"], final["success_count"], final["failed_count"]) == ("COMPLETED", 2, 0)

    for method, path, own_status in OPERATION_ROUTES:
        await assert_like_unknown(h, method, path, b, ended["id"])
        own = await call(h.http, method, path.format(id=ended["id"]), a.api_key)
        assert own.status_code == own_status, (method, path, own.status_code, own.text)
    for order_id in a_orders:
        await assert_like_unknown(h, "GET", ORDER_ROUTE, b, order_id)
        assert (await a.get(ORDER_ROUTE.format(id=order_id))).status_code == 200

    # Lists hold only the caller's own rows, whatever the filters and cursors.
    listed = (await b.get("/v1/bulk-operations", params={"limit": 200})).json()
    assert listed["items"] == []
    b_listed = (await b.get("/v1/orders", params={"limit": 1000})).json()
    assert sorted(o["id"] for o in b_listed["items"]) == sorted(str(i) for i in b_orders)
    a_page = (await a.get("/v1/orders", params={"limit": 1})).json()
    assert a_page["next_cursor"]
    b_with_a_cursor = (await b.get("/v1/orders", params={"cursor": a_page["next_cursor"]})).json()
    assert {o["tenant_id"] for o in b_with_a_cursor["items"]} <= {b.id}


async def _rows(h: Harness, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    async with h.sessionmaker() as session:
        rows = (await session.execute(select(ORDERS).where(ORDERS.c.id.in_(ids)))).mappings().all()
    return {r["id"]: dict(r) for r in rows}


async def test_operations_of_b_over_a_orders_change_none_of_them(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a, b = await h.tenant("iso-a"), await h.tenant("iso-b")
    a_ids = (
        await h.seed(a, 3, status="PAID")
        + await h.seed(a, 2, status="PENDING", paid_at=None)
        + await h.seed(a, 1, status="SHIPPED")
    )
    unknown = uuid.uuid4()
    before = await _rows(h, a_ids)
    bodies = [
        {"operation_type": "BULK_CANCEL", "parameters": {"reason": "not yours"}},
        {"operation_type": "BULK_REFUND", "parameters": {"reason": "not yours"}},
        {
            "operation_type": "BULK_UPDATE",
            "parameters": {"set": {"note": "b was here"}, "add_tags": ["b"], "metadata": {"owner": "b"}},
        },
        {"operation_type": "BULK_EXPORT", "parameters": {"format": "csv"}},
    ]
    # Each operation also holds two of B's own orders (its own, so that they do not race each other).
    owns = [await h.seed(b, 2, status="PAID") for _ in bodies]
    selections = [[str(i) for i in [*a_ids, unknown, *own]] for own in owns]
    dry = (
        await b.post("/v1/bulk-operations", json={**bodies[0], "order_ids": selections[0], "dry_run": True})
    ).json()
    assert dry["would_fail_by_code"].get("ORDER_NOT_FOUND") == len(a_ids) + 1
    assert {s["order_id"] for s in dry["sample"]} <= {str(i) for i in owns[0]}

    ops = [await h.start(b, {**body, "order_ids": sel}) for body, sel in zip(bodies, selections, strict=True)]
    finals = await asyncio.gather(*(h.wait_end(b, op["id"], timeout=180) for op in ops))
    for op, final, b_ids, selection in zip(ops, finals, owns, selections, strict=True):
        assert final["status"] == "PARTIAL_SUCCESS", (
            final["status"],
            final["failure_reason"],
            final["errors"],
        )
        assert (final["total_count"], final["success_count"], final["failed_count"]) == (
            len(selection),
            len(b_ids),
            len(a_ids) + 1,
        )
        items = {i.order_id: i for i in await h.items(op["id"])}
        assert len(items) == len(selection)
        assert all(items[i].status == "SUCCEEDED" for i in b_ids)
        ghost = items[unknown]
        for i in a_ids:
            # Recorded exactly as for an id that exists nowhere: same code, message and flags.
            assert (
                items[i].status,
                items[i].error_code,
                items[i].error_message,
                items[i].retryable,
                items[i].result,
            ) == (ghost.status, "ORDER_NOT_FOUND", ghost.error_message, False, ghost.result)
    assert await _rows(h, a_ids) == before
    assert await h.count(Refund.__table__, Refund.__table__.c.order_id.in_(a_ids)) == 0

    # A selection by filter never reaches another tenant's rows at all.
    by_filter = await h.start(
        b,
        {
            "operation_type": "BULK_EXPORT",
            "filter": {
                "statuses": [
                    "PAID",
                    "PENDING",
                    "SHIPPED",
                    "CANCELLED",
                    "REFUNDED",
                    "PARTIALLY_REFUNDED",
                    "DELIVERED",
                ]
            },
            "parameters": {},
        },
    )
    final = await h.wait_end(b, by_filter["id"])
    all_b = {i for own in owns for i in own}
    assert (final["total_count"], final["success_count"]) == (len(all_b), len(all_b))
    assert {i.order_id for i in await h.items(by_filter["id"])} == all_b
    assert await _rows(h, a_ids) == before


async def test_idempotency_keys_are_per_tenant(harness: Harness) -> None:
    h = harness
    a, b = await h.tenant("iso-a"), await h.tenant("iso-b")
    body = {"operation_type": "BULK_CANCEL", "filter": {"statuses": ["PENDING"]}, "parameters": {}}
    key = {"Idempotency-Key": f"shared-{uuid.uuid4()}"}
    ra = await a.post("/v1/bulk-operations", json=body, headers=key)
    rb = await b.post("/v1/bulk-operations", json=body, headers=key)
    assert (ra.status_code, rb.status_code) == (202, 202), (ra.text, rb.text)
    assert ra.json()["id"] != rb.json()["id"]
    assert (ra.json()["tenant_id"], rb.json()["tenant_id"]) == (a.id, b.id)
    other = await b.post("/v1/bulk-operations", json={**body, "parameters": {"reason": "x"}}, headers=key)
    assert_problem(other, 409)  # B's own replay rule, not A's


async def test_missing_wrong_and_revoked_keys_get_401(harness: Harness) -> None:
    h = harness
    a = await h.tenant("iso-a")
    order = (await h.seed(a, 1))[0]
    op = await h.start(a, {"operation_type": "BULK_CANCEL", "order_ids": [str(order)], "parameters": {}})
    async with h.sessionmaker() as session, session.begin():
        spare = await add_key(session, a.id, name="spare", service=True)
    async with h.sessionmaker() as session, session.begin():
        assert await revoke_key(session, a.id, a.api_key) == 1
    async with h.sessionmaker() as session, session.begin():
        assert await revoke_key(session, a.id, a.api_key) == 0  # already revoked

    routes = (
        [(m, p.format(id=op["id"])) for m, p, _ in OPERATION_ROUTES]
        + [(m, p.format(id=uuid.uuid4())) for m, p, _ in OPERATION_ROUTES]
        + [
            ("GET", "/v1/bulk-operations"),
            ("POST", "/v1/bulk-operations"),
            ("GET", "/v1/orders"),
            ("POST", "/v1/orders"),
            ("GET", ORDER_ROUTE.format(id=order)),
            ("GET", ORDER_ROUTE.format(id="nope")),
        ]
    )
    variants: list[dict[str, str]] = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {a.api_key}"},
        {"Authorization": "Bearer bko_" + "x" * 43},
        {"Authorization": f"Bearer {a.api_key}x"},
        {"Authorization": f"Bearer {a.api_key}"},  # revoked
        {"Authorization": f"Bearer {a.api_key[:10]}"},  # the printed prefix is no key
    ]
    revoked = {"Authorization": f"Bearer {a.api_key}"}
    # Every route with no key and with the revoked one; every kind of bad header on two routes.
    cases = [(m, p, hdrs) for m, p in routes for hdrs in ({}, revoked)]
    cases += [(m, p, hdrs) for m, p in (routes[0], ("POST", "/v1/bulk-operations")) for hdrs in variants]
    bodies: set[bytes] = set()
    for method, path, headers in cases:
        # An invalid body too: nothing about the request is judged before the key is.
        r = await h.http.request(
            method, path, headers=headers, json={"junk": True} if method == "POST" else None
        )
        assert_problem(r, 401)
        assert r.headers["www-authenticate"] == "Bearer"
        bodies.add(r.content)
    assert len(bodies) <= 2  # "send a key" vs "not a valid key"; never anything about the target

    # Revocation is per key: the tenant's other key still works (on a route that needs no worker).
    ok = await call(h.http, "GET", f"/v1/bulk-operations/{op['id']}/items", spare)
    assert ok.status_code == 200 and ok.json()["items"] == []
