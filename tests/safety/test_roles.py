"""Roles on API keys: a viewer changes nothing (403 problem+json on every state-changing route), an
operator cannot approve, the key that created an operation cannot approve it, another approver can."""

from __future__ import annotations

import re
import uuid

import httpx

from bulkops.domain.people import Role
from tests.console.helpers import csrf_token, sign_in_http
from tests.harness import Harness
from tests.safety.keys import Crew, audit, key, set_policy

PROBLEM = "application/problem+json"


async def test_roles_bound_every_route_and_four_eyes(crew: Crew) -> None:
    h, admin, operator, second = crew
    await h.start_worker()
    viewer = await key(h, admin, Role.VIEWER, "vera")
    creator = await key(h, admin, Role.APPROVER, "carla")
    ids = await h.seed(admin, 5, status="PAID")
    await set_policy(admin, approval_types=["BULK_CANCEL"])
    body = {
        "operation_type": "BULK_CANCEL",
        "order_ids": [str(i) for i in ids],
        "parameters": {"reason": "x"},
    }

    # The viewer: 403 problem+json on every route that changes something, whatever it is.
    r = await viewer.post("/v1/bulk-operations", json=body)
    assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM), r.text
    op = await h.start(creator, body)
    assert op["status"] == "AWAITING_APPROVAL"
    changing = [
        (method.upper(), path)
        for path, item in h.app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in item
        if method in ("post", "put", "patch", "delete")
    ]
    assert len(changing) >= 11, changing
    for method, path in changing:
        url = re.sub(r"\{[^}]+\}", op["id"], path)
        r = await h.http.request(method, url, json={}, headers={"Authorization": f"Bearer {viewer.api_key}"})
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    # ... and reads everything.
    for path in ("", f"/{op['id']}", f"/{op['id']}/items", f"/{op['id']}/audit"):
        assert (await viewer.get(f"/v1/bulk-operations{path}")).status_code == 200, path
    assert (await viewer.get("/v1/tenant/policy")).json()["approval_types"] == ["BULK_CANCEL"]

    # An operator controls operations but does not approve them, nor manage the tenant.
    assert (await operator.post(f"/v1/bulk-operations/{op['id']}/approve")).status_code == 403
    assert (await operator.post(f"/v1/bulk-operations/{op['id']}/reject")).status_code == 403
    r = await operator.http.put(
        "/v1/tenant/policy", json={}, headers={"Authorization": f"Bearer {operator.api_key}"}
    )
    assert r.status_code == 403
    assert (await operator.post("/v1/tenant/keys", json={"role": "admin"})).status_code == 403
    # The key that created it cannot approve it; nothing has been touched meanwhile.
    r = await creator.post(f"/v1/bulk-operations/{op['id']}/approve", json={"comment": "mine"})
    assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM), r.text
    assert all(o.status == "PAID" for o in (await h.orders(ids)).values())
    assert (await h.summary_row(op["id"])).status == "AWAITING_APPROVAL"

    r = await second.post(f"/v1/bulk-operations/{op['id']}/approve", json={"comment": "looks right"})
    assert r.status_code == 200, r.text
    assert r.json()["approval"]["decided_by"] == "anna"
    assert (await second.post(f"/v1/bulk-operations/{op['id']}/approve")).status_code == 409
    final = await h.wait_end(admin, op["id"])
    assert (final["status"], final["success_count"]) == ("COMPLETED", 5)
    assert final["approval"]["status"] == "APPROVED"
    events = await audit(viewer, op["id"])
    assert [(e["action"], e["actor_name"]) for e in events] == [
        ("created", "carla"),
        ("approved", "anna"),
        ("started", None),
        ("ended", None),
    ]
    assert events[1]["detail"]["comment"] == "looks right"

    # An admin manages keys: a new viewer key works at once, a revoked one no longer does.
    r = await admin.post("/v1/tenant/keys", json={"role": "viewer", "name": "auditor"})
    assert r.status_code == 201, r.text
    new = r.json()
    assert (
        await h.http.get("/v1/bulk-operations", headers={"Authorization": f"Bearer {new['api_key']}"})
    ).status_code == 200
    r = await h.http.delete(
        f"/v1/tenant/keys/{new['id']}", headers={"Authorization": f"Bearer {admin.api_key}"}
    )
    assert r.status_code == 204
    assert (
        await h.http.get("/v1/bulk-operations", headers={"Authorization": f"Bearer {new['api_key']}"})
    ).status_code == 401


async def test_a_console_session_keeps_its_keys_role(harness: Harness) -> None:
    """Signed in to the console, a viewer key is still a viewer on the API the console calls."""
    h = harness
    admin = await h.tenant()
    viewer = await key(h, admin, Role.VIEWER, "vera")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=h.app), base_url="http://console.test"
    ) as web:
        await sign_in_http(web, viewer.api_key)
        headers = {"X-CSRF-Token": csrf_token((await web.get("/console/operations")).text)}
        assert (await web.get("/v1/bulk-operations")).status_code == 200
        r = await web.post(f"/v1/bulk-operations/{uuid.uuid4()}/cancel", headers=headers)
        assert r.status_code == 403 and "viewer" in r.json()["detail"], r.text
