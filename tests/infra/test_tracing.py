"""One create is one trace: the HTTP request, the workflow's start and run, each activity attempt with
its SQL, and the webhook's delivery, parented as they happened; a continue-as-new starts a new trace
linked to the previous run."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from tests.harness import Stack, eventually
from tests.infra.traced import Traced, named, picture, traced_harness
from tests.support import FlakyOrders
from tests.webhooks.receivers import receiver
from workflows.contracts import PROGRESS_QUERY


@pytest.fixture
async def traced(stack: Stack) -> AsyncIterator[Traced]:
    async with traced_harness(stack) as t:
        yield t


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def of_workflow(spans: list[ReadableSpan], workflow_id: str) -> list[ReadableSpan]:
    """The workflow's own spans (not the progress queries' that reads send it)."""
    return [
        s
        for s in spans
        if s.attributes
        and s.attributes.get("temporalWorkflowID") == workflow_id
        and "Query" not in s.name.partition(":")[0]
    ]


def sql_under(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [
        s
        for s in spans
        if parent_of(s) == parent.context.span_id and s.attributes and "postgresql" in str(s.attributes)
    ]


async def test_one_create_is_one_trace(traced: Traced) -> None:
    h = traced.h
    t = await h.tenant()
    paid = await h.seed(t, 4)
    shipped = await h.seed(t, 1, status="SHIPPED")  # fails its rule: ORDER_NOT_CANCELLABLE
    retried = paid[0]  # a transient fault on its first attempt
    await h.start_worker(FlakyOrders(h.order_pool, always_fail=set(), fail_once={retried}))
    async with receiver("ok") as rx:
        body = {
            "operation_type": "BULK_CANCEL",
            "order_ids": [str(i) for i in paid + shipped],
            "parameters": {"reason": "trace"},
            "notify_url": rx.url,
        }
        op = await h.start(t, body)
        final = await h.wait_end(t, op["id"])
        assert (final["status"], final["success_count"], final["failed_count"]) == ("PARTIAL_SUCCESS", 4, 1)
        await eventually(lambda: len(rx.hits) == 1)
        await eventually(lambda: bool(named(traced.spans(), "RunActivity:deliver_webhook")))
    spans = traced.spans()

    (http,) = [s for s in named(spans, "POST /v1/bulk-operations") if s.kind == SpanKind.SERVER]
    trace_id = http.context.trace_id
    assert http.attributes is not None
    assert http.attributes["bulkops.tenant_id"] == t.id
    assert http.attributes["bulkops.operation_id"] == op["id"]
    assert sql_under(spans, http), "the create's own SQL is under the request"

    workflow_id = f"bulk-op-{op['id']}"
    ours = of_workflow(spans, workflow_id)
    assert {s.context.trace_id for s in ours} == {trace_id}, "every span of the operation is in one trace"
    # A progress read is a trace of its own (its GET's), not part of the operation's.
    reads = named(spans, "HandleQuery:progress")
    assert reads and all(r.context.trace_id != trace_id for r in reads)

    (start,) = named(ours, "StartWorkflow:BulkOperationWorkflow")
    assert parent_of(start) == http.context.span_id
    (run,) = named(ours, "RunWorkflow:BulkOperationWorkflow")
    assert parent_of(run) == start.context.span_id
    assert run.attributes is not None and run.attributes["bulkops.operation_id"] == op["id"]

    starts = {s.context.span_id: s for s in named(ours, "StartActivity:process_order")}
    attempts = named(ours, "RunActivity:process_order")
    assert len(starts) == 5 and all(parent_of(s) == start.context.span_id for s in starts.values())
    assert len(attempts) == 6, "five orders, one of them twice"
    by_order: dict[str, list[ReadableSpan]] = {}
    for a in attempts:
        assert a.attributes is not None
        assert parent_of(a) in starts
        assert a.attributes["bulkops.tenant_id"] == t.id and a.attributes["bulkops.operation_id"] == op["id"]
        by_order.setdefault(str(a.attributes["bulkops.order_id"]), []).append(a)
    assert set(by_order) == {str(i) for i in paid + shipped}
    first, second = sorted(by_order[str(retried)], key=lambda s: s.start_time or 0)
    assert first.attributes is not None and second.attributes is not None
    assert (first.attributes["temporalActivityAttempt"], second.attributes["temporalActivityAttempt"]) == (
        1,
        2,
    )
    assert parent_of(first) == parent_of(second), "both attempts answer the same scheduled activity"
    assert first.status.status_code == StatusCode.ERROR and second.status.status_code != StatusCode.ERROR
    assert not sql_under(spans, first), "the faulty attempt failed before its transaction"
    for a in attempts:
        if a is not first:
            assert sql_under(spans, a), f"no SQL under {a.attributes}"

    (webhook,) = named(ours, "RunActivity:deliver_webhook")
    assert webhook.context.trace_id == trace_id
    under_webhook = [s for s in spans if parent_of(s) == webhook.context.span_id]
    posts = [s for s in under_webhook if s.kind == SpanKind.CLIENT and "postgresql" not in str(s.attributes)]
    assert len(posts) == 1 and posts[0].name == "POST", [s.name for s in posts]
    assert sql_under(spans, webhook), "the delivery's bookkeeping SQL is under its attempt"
    assert "traceparent" in rx.hits[0].headers, "the receiver can join the trace"
    if target := os.environ.get("BULKOPS_TRACE_PICTURE"):  # how the README's picture is made
        Path(target).write_text(picture(spans, trace_id) + "\n")  # noqa: ASYNC240 (once, by hand)


async def test_continue_as_new_starts_a_linked_trace(traced: Traced) -> None:
    h = traced.h
    h.configure(max_events_per_run=200)
    t = await h.tenant()
    ids = await h.seed(t, 120)
    await h.start_worker()
    op = await h.start(
        t, {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids], "max_concurrency": 10}
    )
    assert (await h.wait_end(t, op["id"]))["success_count"] == 120
    await eventually(lambda: bool(named(traced.spans(), "CompleteWorkflow:BulkOperationWorkflow")))
    spans = traced.spans()
    workflow_id = f"bulk-op-{op['id']}"
    ours = of_workflow(spans, workflow_id)
    runs = named(ours, "RunWorkflow:BulkOperationWorkflow")
    traces = {s.context.trace_id for s in runs}
    assert len(runs) >= 2 and len(traces) == len(runs), "each run is a trace of its own"
    roots = {s.context.trace_id: s for s in named(ours, "ContinueAsNew:BulkOperationWorkflow")}
    (http,) = [s for s in named(spans, "POST /v1/bulk-operations") if s.kind == SpanKind.SERVER]
    assert set(roots) == traces - {http.context.trace_id}
    for root in roots.values():
        assert root.parent is None and len(root.links) == 1
        assert (
            root.links[0].context.trace_id in traces
            and root.links[0].context.trace_id != root.context.trace_id
        )
    # Every activity attempt sits in its run's trace, never in the first one's.
    attempts = named(ours, "RunActivity:process_order")
    assert {a.context.trace_id for a in attempts} == traces
    assert len({str((a.attributes or {})["bulkops.order_id"]) for a in attempts}) == 120
    assert uuid.UUID(op["id"])

    # A query of an ended run replays it, continue-as-new and all (so does a worker that lost it from
    # its cache): a replay starts no trace. CI saw a reader's query of a run just ended do it.
    ended_runs = {str((r.attributes or {})["temporalRunID"]) for r in roots.values()}
    for run_id in ended_runs:
        await h.client.get_workflow_handle(workflow_id, run_id=run_id).query(PROGRESS_QUERY)
    after = named(of_workflow(traced.spans(), workflow_id), "ContinueAsNew:BulkOperationWorkflow")
    assert len(after) == len(roots), "a replayed continue-as-new started a trace"
