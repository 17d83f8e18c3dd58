"""API keys and orders are created within a per-tenant budget per minute: 429 problem+json with
Retry-After beyond it (422 for one request larger than the whole budget), other tenants unaffected."""

from __future__ import annotations

from tests.harness import Harness


async def test_keys_and_orders_per_minute(harness: Harness) -> None:
    h = harness
    # The tenant was created with its first key a moment ago: it counts.
    h.configure(tenant_keys_per_minute=3, tenant_orders_per_minute=5)
    t, other = await h.tenant(), await h.tenant()
    for _ in range(2):
        assert (await t.post("/v1/tenant/keys", json={"role": "viewer"})).status_code == 201
    r = await t.post("/v1/tenant/keys", json={"role": "viewer"})
    assert r.status_code == 429 and r.headers["content-type"].startswith("application/problem+json"), r.text
    assert 1 <= int(r.headers["Retry-After"]) <= 60 and "keys" in r.json()["detail"]
    assert (await other.post("/v1/tenant/keys", json={"role": "viewer"})).status_code == 201

    orders = {"orders": [{"total_cents": 100}] * 3}
    assert (await t.post("/v1/orders", json=orders)).status_code == 201
    r = await t.post("/v1/orders", json=orders)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1, r.text
    r = await other.post("/v1/orders", json={"orders": [{"total_cents": 100}] * 6})
    assert r.status_code == 422 and "orders" in r.json()["detail"], r.text
    assert (await other.post("/v1/orders", json=orders)).status_code == 201
    assert len((await t.get("/v1/orders")).json()["items"]) == 3
