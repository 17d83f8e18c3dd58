"""The deployment's caps are ceilings: a tenant's policy may lower them (applied), never raise them
(422 naming the ceiling); a policy stored above one is held to it all the same."""

from __future__ import annotations

from sqlalchemy import update

from bulkops.store.tables import TENANTS
from tests.api.test_limits import cancel_body
from tests.harness import Harness, Tenant


async def put_policy(t: Tenant, **policy: object) -> tuple[int, dict]:
    r = await t.http.put("/v1/tenant/policy", json=policy, headers={"Authorization": f"Bearer {t.api_key}"})
    return r.status_code, r.json()


async def test_a_policy_may_lower_the_deployment_caps_never_raise_them(harness: Harness) -> None:
    h = harness
    h.configure(tenant_creates_per_minute=50, tenant_max_waiting=40, tenant_max_concurrency=100)
    await h.start_worker()
    t = await h.tenant()
    ids = await h.seed(t, 2)
    for field, ceiling in (
        ("max_creates_per_minute", 50),
        ("max_waiting_operations", 40),
        ("max_concurrency_total", 100),
    ):
        status, body = await put_policy(t, **{field: ceiling + 1})
        assert status == 422, body
        assert str(ceiling) in body["detail"] and field in body["detail"], body
        assert body["errors"][0]["loc"] == ["body", field]
        assert (await put_policy(t, **{field: ceiling}))[0] == 200
    assert (await t.get("/v1/tenant/policy")).json()["max_concurrency_total"] == 100

    # Below the ceiling: applied.
    assert (await put_policy(t, max_concurrency_total=20))[0] == 200
    r = await t.post("/v1/bulk-operations", json=cancel_body(ids, max_concurrency=30))
    assert r.status_code == 422 and "at most 20" in r.json()["detail"], r.text
    r = await t.post("/v1/bulk-operations", json=cancel_body(ids, max_concurrency=20))
    assert r.status_code == 202, r.text
    await h.wait_end(t, r.json()["id"])

    # A policy written above a ceiling before it was checked: held to the ceiling.
    async with h.sessionmaker() as s, s.begin():
        await s.execute(
            update(TENANTS).where(TENANTS.c.id == t.id).values(policy={"max_concurrency_total": 5000})
        )
    r = await t.post("/v1/bulk-operations", json=cancel_body(ids, max_concurrency=101))
    assert r.status_code == 422 and "at most 100" in r.json()["detail"], r.text
