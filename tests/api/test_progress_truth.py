"""Progress never goes backwards, for any reader: a GET poller and an events stream while the worker
is SIGKILLed and kept down for 6 s see the counters hold (`checkpoint`), then move on (`live`)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from tests.harness import Harness, Stack, Tenant
from tests.processes import WorkerProcess
from tests.serving import serve

pytestmark = pytest.mark.faults

DOWN_S = 6.0  # past the query timeout (1.5 s) a few times over: several reads while it is down


async def poll_get(tenant: Tenant, op_id: str, seen: list[tuple[float, str, int, str]]) -> None:
    while True:
        body = (await tenant.get(f"/v1/bulk-operations/{op_id}")).json()
        seen.append((time.monotonic(), body["progress_source"], body["processed_count"], body["status"]))
        if body["progress_source"] == "final":
            return
        await asyncio.sleep(0.2)


async def read_stream(
    base: str, tenant: Tenant, op_id: str, seen: list[tuple[float, str, dict[str, Any]]]
) -> None:
    headers = {"Authorization": f"Bearer {tenant.api_key}", "Accept": "text/event-stream"}
    name = "message"
    async with (
        httpx.AsyncClient(base_url=base, timeout=None) as http,
        http.stream("GET", f"/v1/bulk-operations/{op_id}/events", headers=headers) as r,
    ):
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                seen.append((time.monotonic(), name, json.loads(line[5:])))


async def test_counters_hold_while_the_worker_is_down(stack: Stack, harness: Harness) -> None:
    h = harness
    settings = h.configure(
        activity_timeout_s=2.0, worker_metrics_port=0, activity_max_attempts=10, progress_query_timeout_s=1.5
    )
    a = await h.tenant()
    paid = await h.seed(a, 1000, status="PAID", total_cents=700)
    worker = WorkerProcess(settings, stack.root / "worker-progress.log")
    worker.start()
    gets: list[tuple[float, str, int, str]] = []
    events: list[tuple[float, str, dict[str, Any]]] = []
    try:
        async with serve(settings) as (base, _app):
            op = await h.start(
                a,
                {
                    "operation_type": "BULK_REFUND",
                    "order_ids": [str(i) for i in paid],
                    "max_concurrency": 10,
                    "parameters": {"reason": "progress truth"},
                },
            )
            readers = asyncio.gather(poll_get(a, op["id"], gets), read_stream(base, a, op["id"], events))
            # Past the second page fetch, so that the row holds a checkpoint beyond zero.
            await h.wait_for(a, op["id"], lambda b: b["processed_count"] >= 600, timeout=120)
            worker.kill()
            killed = time.monotonic()
            await asyncio.sleep(DOWN_S)
            row = await h.summary_row(op["id"])
            worker.start()
            restarted = time.monotonic()
            async with asyncio.timeout(180):
                await readers
    finally:
        worker.stop()

    # Strings, so that a failure shows them whole (pytest shortens a long list).
    timeline = str([(round(t - killed, 1), s, n) for t, s, n, _ in gets])
    stream = str(
        [(round(t - killed, 1), n, d["progress_source"], d["processed_count"]) for t, n, d in events]
    )
    assert 400 <= row.processed_count < 1000 and row.progress_at is not None and row.status == "PROCESSING"
    # The GET poller: never backwards; the checkpoint while the worker was down, live again after.
    counts = [n for _, _, n, _ in gets]
    assert counts == sorted(counts), timeline
    down = [(src, st) for t, src, _, st in gets if killed + 2 < t < restarted]
    assert down and all(d == ("checkpoint", "PROCESSING") for d in down), timeline
    assert any(src == "live" for t, src, _, _ in gets if t > restarted), timeline
    assert gets[-1][1:] == ("final", 1000, "COMPLETED")
    # The events stream: the same, event by event.
    counts = [d["processed_count"] for _, _, d in events]
    assert counts == sorted(counts), stream
    # An event comes on a change only: the stream's last word before the worker is back is
    # `checkpoint`, and nothing it says once the worker is gone is `live`. (That last word may come
    # just before the kill, when a query of a busy worker timed out: the views after it are the same.)
    down = [(t, d["progress_source"]) for t, _, d in events if t < restarted]
    assert down and down[-1][1] == "checkpoint", stream
    assert all(src == "checkpoint" for t, src in down if t > killed + 2), stream
    assert any(d["progress_source"] == "live" for t, _, d in events if t > restarted), stream
    assert [n for _, n, _ in events].count("completed") == 1 and events[-1][1] == "completed"
    assert events[-1][2]["processed_count"] == 1000
    refunds = await h.refunds(op["id"])
    assert len(refunds) == len({r.order_id for r in refunds}) == 1000
