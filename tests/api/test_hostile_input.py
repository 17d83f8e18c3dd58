"""No 500 from any input: forged cursors on every paged route answer 400, JSON nested too deeply in
every body that takes free-form JSON (and the console's metadata field) answers 422."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.console.helpers import csrf_token, sign_in_http
from tests.harness import Harness

ISSUE_CURSOR = "WyIyMDI0LTAxLTAxVDAwOjAwOjAwIiwgMV0"  # ["2024-01-01T00:00:00", 1]


def b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


FORGED = [
    ISSUE_CURSOR,
    b64([1, "x"]),
    b64([None, None]),
    b64(["2024-01-01T00:00:00", {"a": 1}]),
    b64(["not a time", "00000000-0000-0000-0000-000000000000"]),
    b64({"a": 1}),
    b64(["x"]),
    b64([2**40]),
    b64([[1]]),
    b64(1.5),
    "!!!",
]


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.fixture
async def web(harness: Harness) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=harness.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bulkops.test") as client:
        yield client  # type: ignore[misc]


async def test_forged_cursors_answer_400_on_every_paged_route(
    harness: Harness, web: httpx.AsyncClient
) -> None:
    h = harness
    await h.start_worker()
    t = await h.tenant()
    ids = await h.seed(t, 2)
    body = {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids], "parameters": {}}
    op = await h.wait_end(t, (await h.start(t, body))["id"])
    await sign_in_http(web, t.api_key)
    for cursor in FORGED:
        for path in ("/v1/bulk-operations", "/v1/orders", f"/v1/bulk-operations/{op['id']}/items"):
            r = await t.get(path, params={"cursor": cursor})
            assert r.status_code == 400, (path, cursor, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
        for path, name in (
            ("/console/operations", "cursor"),
            (f"/console/operations/{op['id']}", "items_cursor"),
        ):
            r = await web.get(path, params={name: cursor})
            assert r.status_code == 400, (path, cursor, r.status_code)


async def test_deeply_nested_json_answers_422(harness: Harness, web: httpx.AsyncClient) -> None:
    h = harness
    t = await h.tenant()
    ids = await h.seed(t, 1)
    for depth in (40, 5000, 200_000):
        deep = nested(depth)
        raw = json.dumps(deep) if depth < 900 else '{"k":' * depth + '"leaf"' + "}" * depth
        update = f'{{"operation_type": "BULK_UPDATE", "order_ids": ["{ids[0]}"], "parameters": {{"metadata": {raw}}}}}'
        for method, path, content in (
            ("POST", "/v1/bulk-operations", update),
            ("POST", "/v1/orders", f'{{"orders": [{{"total_cents": 1, "metadata": {raw}}}]}}'),
            ("PUT", "/v1/tenant/policy", f'{{"approval_types": {raw}}}'),
        ):
            r = await t.http.request(
                method,
                path,
                content=content,
                headers={"Authorization": f"Bearer {t.api_key}", "Content-Type": "application/json"},
            )
            assert r.status_code == 422, (path, depth, r.status_code, r.text[:300])
            assert r.headers["content-type"].startswith("application/problem+json")
    await sign_in_http(web, t.api_key)
    form = csrf_token((await web.get("/console/operations/new")).text)
    for depth in (40, 5000):
        raw = '{"k":' * depth + '"leaf"' + "}" * depth
        r = await web.post(
            "/console/operations/new",
            data={
                "csrf_token": form,
                "operation_type": "BULK_UPDATE",
                "selection": "ids",
                "order_ids": str(ids[0]),
                "update_metadata": raw,
            },
        )
        assert r.status_code == 422, (depth, r.status_code)
        assert "metadata" in r.text
