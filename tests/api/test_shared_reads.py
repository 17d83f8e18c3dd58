"""Reads that stay cheap under many readers: concurrent GETs of one operation share one progress
query, every event stream of one operation follows one poller, a tenant's open streams are capped
(429 with Retry-After), and a stream ends after its lifetime and resumes from Last-Event-ID."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
from temporalio.client import Client

from tests.harness import Harness, Stack, Tenant, eventually
from tests.serving import serve
from tests.support import SlowOrders


async def _stream(
    base: str, tenant: Tenant, op_id: str, last_id: str | None = None
) -> list[tuple[str, str, Any]]:
    """(event, id, data) of one stream until the server ends it."""
    headers = {"Authorization": f"Bearer {tenant.api_key}", "Accept": "text/event-stream"}
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    events: list[tuple[str, str, Any]] = []
    name, ident, data = "message", "", ""
    async with (
        asyncio.timeout(60),
        httpx.AsyncClient(base_url=base, timeout=None) as http,
        http.stream("GET", f"/v1/bulk-operations/{op_id}/events", headers=headers) as r,
    ):
        assert r.status_code == 200, await r.aread()
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("id:"):
                ident = line[3:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
            elif line == "" and data:
                events.append((name, ident, json.loads(data)))
                name, ident, data = "message", "", ""
    return events


def _count_calls(shared: Any) -> dict[str, int]:
    """Counts the progress queries that `shared` (the reader's coalescer) actually sends."""
    calls = {"n": 0}
    fetch = shared.fetch

    async def counted(key: Any) -> Any:
        calls["n"] += 1
        return await fetch(key)

    shared.fetch = counted
    return calls


async def test_readers_of_one_operation_share_its_query_and_its_poller(
    stack: Stack, client: Client, harness: Harness
) -> None:
    settings = harness.settings.model_copy(
        update={"progress_fresh_s": 1.0, "max_streams_per_tenant": 4, "stream_max_s": 3.0}
    )
    async with Harness.open(stack, client, settings) as h:
        # ~20 s for the operation: it must outlive the streams' lifetime below.
        slow = SlowOrders(h.order_pool, delay=0.2)
        await h.start_worker(slow)
        a = await h.tenant("readers")
        ids = await h.seed(a, 200)
        op = await h.start(
            a, {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids], "max_concurrency": 2}
        )
        await h.wait_for(a, op["id"], lambda b: b["progress_source"] == "live" and b["processed_count"] > 0)

        # 30 readers at once: one query answered them all (one answer, as of one moment).
        reads = h.app.state.services.operations.reads
        queries = _count_calls(reads.shared)
        views = [
            r.json()
            for r in await asyncio.gather(*(a.get(f"/v1/bulk-operations/{op['id']}") for _ in range(30)))
        ]
        assert {v["progress_source"] for v in views} == {"live"}
        assert len({v["progress_at"] for v in views}) <= 2, {v["progress_at"] for v in views}
        assert len({v["processed_count"] for v in views}) <= 2
        assert queries["n"] <= 2, queries

        # No shared answers this time: streams that polled on their own would each see their own.
        async with serve(settings.model_copy(update={"progress_fresh_s": 0})) as (base, app):
            # Four streams of one operation (the tenant's cap): one poller feeds them all, so they
            # see the very same views (down to the moment each was read), and a fifth is refused.
            streams = [asyncio.create_task(_stream(base, a, op["id"])) for _ in range(4)]
            feeds = app.state.services.operations.feeds
            # Each stream is in once it is authenticated and following (longer on a loaded machine).
            await eventually(lambda: sum(f.followers for f in feeds.feeds.values()) >= 4, timeout=10)
            assert [f.followers for f in feeds.feeds.values()] == [4]  # one poller, four streams
            async with httpx.AsyncClient(base_url=base) as http:
                refused = await http.get(
                    f"/v1/bulk-operations/{op['id']}/events", headers={"Authorization": f"Bearer {a.api_key}"}
                )
            assert refused.status_code == 429
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["Retry-After"]) > 0
            t0 = time.monotonic()
            seen = await asyncio.gather(*streams)
            # The lifetime: each ended after ~3 s without a `completed` event (the operation runs on).
            assert time.monotonic() - t0 < 10
            assert all(s and all(name == "progress" for name, _, _ in s) for s in seen), seen
            # A stream that joined (or ended) a poll later sees one view more or less at either end;
            # the views they all saw are the very same ones, down to when each was read. Streams
            # that polled on their own would have read each count at a moment of their own.
            views = [{i: (d["processed_count"], d["progress_at"]) for _, i, d in s} for s in seen]
            common = set(views[0]).intersection(*views[1:])
            assert common, views
            assert all(v[i] == views[0][i] for v in views[1:] for i in common), views

            # Reconnecting with the last id seen: that view is not sent again; the stream carries on
            # to the end once the operation ends (which it need not take its time over any more).
            last_id = seen[0][-1][1]
            slow.delay = 0.0
            resumed = await _stream(base, a, op["id"], last_id=last_id)
            while resumed[-1][0] != "completed":
                resumed += await _stream(base, a, op["id"], last_id=resumed[-1][1])
            assert resumed[0][1] != last_id
            assert [name for name, _, _ in resumed].count("completed") == 1
            assert resumed[-1][2]["processed_count"] == 200
            counts = [d["processed_count"] for _, _, d in resumed]
            assert counts == sorted(counts)


async def test_a_read_after_a_control_sees_at_least_what_the_control_answered(harness: Harness) -> None:
    """Reads reuse a progress answer for its freshness window; a pause answered since then is newer:
    the next read in that process shows it (PAUSED, its frozen counters), not the answer before it.
    The window is widened here so that the earlier answer is surely still fresh."""
    h = harness
    h.app.state.services.operations.reads.shared.fresh_s = 30.0
    await h.start_worker(SlowOrders(h.order_pool, delay=0.05))
    a = await h.tenant()
    ids = await h.seed(a, 200)
    op = await h.start(
        a, {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids], "max_concurrency": 4}
    )
    path = f"/v1/bulk-operations/{op['id']}"
    handle = h.client.get_workflow_handle(op["workflow_id"])

    async def running() -> bool:
        return bool((await handle.query("progress"))["processed_count"] >= 5)

    await eventually(running, timeout=30)
    before = (await a.get(path)).json()  # the answer now held for the window
    assert (before["status"], before["progress_source"]) == ("PROCESSING", "live")
    paused = await a.post(f"{path}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "PAUSED", paused.text
    after = (await a.get(path)).json()
    assert (after["status"], after["processed_count"]) == ("PAUSED", paused.json()["processed_count"])
    resumed = await a.post(f"{path}/resume")
    assert resumed.status_code == 200, resumed.text
    assert (await a.get(path)).json()["status"] == "PROCESSING"
    await a.post(f"{path}/cancel")
    final = await h.wait_end(a, op["id"])
    assert final["status"] == "CANCELLED"
