"""`GET …/events` over a real HTTP server: progress while running, one `completed`, then the end."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.harness import Harness, Tenant
from tests.serving import serve
from tests.support import SlowOrders


async def read_events(base: str, tenant: Tenant, op_id: str, limit: float = 120) -> list[tuple[str, Any]]:
    """Every event of one stream, until the server ends it."""
    events: list[tuple[str, Any]] = []
    name, data = "message", []
    headers = {"Authorization": f"Bearer {tenant.api_key}", "Accept": "text/event-stream"}
    async with (
        asyncio.timeout(limit),
        httpx.AsyncClient(base_url=base, timeout=None) as http,
        http.stream("GET", f"/v1/bulk-operations/{op_id}/events", headers=headers) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                events.append((name, json.loads("\n".join(data))))
                name, data = "message", []
    return events


async def test_events_stream_progress_then_one_completed(harness: Harness) -> None:
    h = harness
    # A little latency per order, so that the stream sees the counters move.
    await h.start_worker(SlowOrders(h.order_pool, delay=0.01))
    a = await h.tenant("acme")
    paid = await h.seed(a, 60)
    cancelled = await h.seed(a, 5, status="CANCELLED")
    async with serve(h.settings) as (base, _):
        ids = [str(i) for i in paid + cancelled]
        op = await h.start(
            a,
            {
                "operation_type": "BULK_CANCEL",
                "order_ids": ids,
                "parameters": {"reason": "sse"},
                "max_concurrency": 5,
            },
        )
        events = await read_events(base, a, op["id"])

        names = [n for n, _ in events]
        assert names.count("completed") == 1 and names[-1] == "completed"
        assert set(names[:-1]) == {"progress"}
        progress = [d["processed_count"] for n, d in events if n == "progress"]
        assert len(progress) >= 2, events
        assert progress == sorted(progress)
        assert all(d["id"] == op["id"] and d["total_count"] in (0, 65) for _, d in events)
        assert all(d["status"] in ("PENDING", "PROCESSING") for n, d in events if n == "progress")

        final = events[-1][1]
        row = await h.summary_row(op["id"])
        assert row.status == final["status"] == "PARTIAL_SUCCESS"
        counts = tuple(final[k] for k in ("total_count", "processed_count", "success_count", "failed_count"))
        assert counts == (row.total_count, row.processed_count, row.success_count, row.failed_count)
        assert counts == (65, 65, 60, 5)
        assert final["percent_complete"] == 100.0

        # Connecting after the end: the `completed` event at once, and nothing else.
        again = await read_events(base, a, op["id"], limit=30)
        assert [n for n, _ in again] == ["completed"]
        assert again[0][1]["processed_count"] == 65 and again[0][1]["status"] == "PARTIAL_SUCCESS"


async def test_events_of_another_tenant_or_unknown_is_404(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a, b = await h.tenant("acme"), await h.tenant("other")
    ids = await h.seed(a, 3)
    op = await h.start(
        a,
        {
            "operation_type": "BULK_EXPORT",
            "order_ids": [str(i) for i in ids],
            "parameters": {"format": "csv"},
        },
    )
    await h.wait_end(a, op["id"])
    for tenant, path in ((b, op["id"]), (a, "6f1c0b9e-0000-4000-8000-000000000000")):
        r = await tenant.get(f"/v1/bulk-operations/{path}/events")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 404
    r = await b.http.get(f"/v1/bulk-operations/{op['id']}/events")
    assert r.status_code == 401
