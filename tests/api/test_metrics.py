"""`/metrics`: Prometheus counters with the right labels after one operation (API and worker side)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from bulkops.devstack.postgres import free_port
from bulkops.infra.metrics import start_metrics_server
from tests.harness import Harness

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape(h: Harness) -> Samples:
    r = await h.http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_after_one_operation(harness: Harness) -> None:
    h = harness
    a = await h.tenant("acme")
    paid = await h.seed(a, 3)
    cancelled = await h.seed(a, 1, status="CANCELLED")
    body = {
        "operation_type": "BULK_CANCEL",
        "order_ids": [str(i) for i in [*paid, *cancelled, uuid.uuid4()]],
        "parameters": {"reason": "metrics"},
    }

    m0 = await scrape(h)
    op = await h.start(a, body)  # no worker yet: it waits PENDING
    m1 = await scrape(h)
    await h.start_worker()
    final = await h.wait_end(a, op["id"])
    assert (final["status"], final["success_count"], final["failed_count"]) == ("PARTIAL_SUCCESS", 3, 2)
    m2 = await scrape(h)

    def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(m1, m0, "bulkops_operations_started_total", operation_type="BULK_CANCEL") == 1
    running = {"operation_type": "BULK_CANCEL", "status": "PENDING"}
    assert delta(m1, m0, "bulkops_operations_running", **running) == 1
    assert delta(m2, m0, "bulkops_operations_running", **running) == 0
    idle = frozenset({"operation_type": "BULK_EXPORT", "status": "PAUSED"}.items())
    assert ("bulkops_operations_running", idle) in m2  # every combination is reported, zeros included

    assert (
        delta(
            m2, m1, "bulkops_operations_ended_total", operation_type="BULK_CANCEL", status="PARTIAL_SUCCESS"
        )
        == 1
    )
    processed = "bulkops_orders_processed_total"
    assert delta(m2, m1, processed, operation_type="BULK_CANCEL", outcome="SUCCEEDED", error_code="") == 3
    assert (
        delta(
            m2, m1, processed, operation_type="BULK_CANCEL", outcome="FAILED", error_code="ALREADY_CANCELLED"
        )
        == 1
    )
    assert (
        delta(m2, m1, processed, operation_type="BULK_CANCEL", outcome="FAILED", error_code="ORDER_NOT_FOUND")
        == 1
    )
    durations = "bulkops_activity_duration_seconds_count"
    assert delta(m2, m1, durations, activity="process_order", outcome="ok") == 5
    assert delta(m2, m1, durations, activity="snapshot_selection", outcome="ok") == 1
    assert delta(m2, m1, durations, activity="finalize_operation", outcome="ok") == 1
    assert value(
        m2, "bulkops_activity_duration_seconds_bucket", activity="process_order", outcome="ok", le="+Inf"
    ) == value(m2, durations, activity="process_order", outcome="ok")

    # The worker serves the same registry on its own port.
    port = free_port()
    server = start_metrics_server(port, addr="127.0.0.1")
    assert server is not None
    try:
        async with httpx.AsyncClient() as http:
            r = await http.get(f"http://127.0.0.1:{port}/metrics")
        worker_side = parse(r.text)
        ok = {"operation_type": "BULK_CANCEL", "outcome": "SUCCEEDED", "error_code": ""}
        assert value(worker_side, processed, **ok) == value(m2, processed, **ok) >= 3
        assert start_metrics_server(port, addr="127.0.0.1") is None  # a port in use is not fatal
    finally:
        await asyncio.to_thread(server.shutdown)


async def test_metrics_behind_a_token(harness: Harness) -> None:
    h = harness
    h.configure(metrics_token="scrape-" + uuid.uuid4().hex)
    assert (await h.http.get("/metrics")).status_code == 401
    wrong = await h.http.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["content-type"].startswith("application/problem+json")
    ok = await h.http.get("/metrics", headers={"Authorization": f"Bearer {h.settings.metrics_token}"})
    assert ok.status_code == 200 and "bulkops_operations_running" in ok.text


async def test_idle_gauge_is_the_longest_wait_since_the_rows_last_change(harness: Harness) -> None:
    h = harness
    a = await h.tenant()
    (paid,) = await h.seed(a, 1)
    op = await h.start(a, {"operation_type": "BULK_REFUND", "order_ids": [str(paid)]})  # no worker: PENDING
    waiting = {"operation_type": "BULK_REFUND", "status": "PENDING"}
    async with h.engine.begin() as conn:  # as if it had waited for a slot for an hour
        await conn.execute(
            text("UPDATE bulk_operations SET created_at = now() - interval '1 hour' WHERE id = :id"),
            {"id": op["id"]},
        )
    assert 3600 <= value(await scrape(h), "bulkops_operations_idle_seconds", **waiting) < 3700
    await h.start_worker()
    await h.wait_end(a, op["id"])
    # Ended, it waits no more (other operations of the session's stack may still wait, not for an hour).
    assert value(await scrape(h), "bulkops_operations_idle_seconds", **waiting) < 3600
