"""`BULKOPS_LOG_FORMAT=json`: every record of one operation, from the API, the worker's activities
and the workflow, is one JSON object a line with the ids that apply to it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.trace import SpanKind
from temporalio import activity, workflow

from bulkops.infra.logs import JsonFormatter, configure_temporal_loggers
from bulkops.settings import Settings
from tests.harness import Stack, eventually
from tests.infra.traced import named, traced_harness
from tests.support import FlakyOrders
from tests.webhooks.receivers import receiver
from workflows.search_attributes import TENANT_ID


@pytest.fixture
def json_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The root logger also writes JSON lines (as `setup_logging` would) into the returned buffer."""
    for logger, name in (
        (workflow.logger, "full_workflow_info_on_extra"),
        (workflow.logger, "workflow_info_on_message"),
        (activity.logger, "activity_info_on_message"),
    ):
        monkeypatch.setattr(logger, name, getattr(logger, name))
    configure_temporal_loggers(Settings(BULKOPS_LOG_FORMAT="json"))
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter(tenant_attribute=TENANT_ID.name))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_an_operations_logs_are_json_lines_with_its_ids(stack: Stack, json_lines: io.StringIO) -> None:
    async with traced_harness(stack, BULKOPS_LOG_FORMAT="json") as traced:
        h = traced.h
        t = await h.tenant()
        paid = await h.seed(t, 2)
        shipped = await h.seed(t, 1, status="SHIPPED")
        await h.start_worker(FlakyOrders(h.order_pool, always_fail=set(), fail_once={paid[0]}))
        async with receiver("ok") as rx:
            body = {
                "operation_type": "BULK_CANCEL",
                "order_ids": [str(i) for i in paid + shipped],
                "notify_url": rx.url,
            }
            op = await h.start(t, body)
            assert (await h.wait_end(t, op["id"]))["status"] == "PARTIAL_SUCCESS"
            await eventually(lambda: "webhook delivered" in json_lines.getvalue())
        spans = traced.spans()

    records: list[dict[str, Any]] = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    ours = [r for r in records if r.get("operation_id") == op["id"]]
    (http,) = [s for s in named(spans, "POST /v1/bulk-operations") if s.kind == SpanKind.SERVER]
    trace_id = format(http.context.trace_id, "032x")
    workflow_id = f"bulk-op-{op['id']}"

    def logged_by(logger: str) -> list[dict[str, Any]]:
        found = [r for r in ours if r["logger"] == logger]
        assert found, f"nothing of the operation's logged by {logger}: {[r['logger'] for r in ours]}"
        return found

    for r in ours:
        assert {"timestamp", "level", "logger", "message"} <= set(r), r
    # The SDK's own line about a failed attempt is logged after the attempt (and its span) ended:
    # it has the Temporal ids (and so the operation's), not the tenant's or the trace's.
    (sdk,) = [r for r in ours if r["message"] == "Completing activity as failed"]
    assert (sdk["workflow_id"], sdk["attempt"]) == (workflow_id, 1) and sdk["run_id"], sdk
    # The test's own requests (its client shares the app's task here, so the ids bound by the app).
    ours = [r for r in ours if r is not sdk and "http://bulkops.test" not in r["message"]]
    for r in ours:
        assert r["tenant_id"] == t.id, r
        assert r["trace_id"] == trace_id and len(r["span_id"]) == 16, r

    (started,) = logged_by("bulkops.service.operations")
    assert started["span_id"] == format(http.context.span_id, "016x"), "the API's line is the request's"
    assert "workflow_id" not in started

    for r in logged_by("temporalio.workflow"):
        assert (r["workflow_id"], r["workflow_type"]) == (workflow_id, "BulkOperationWorkflow"), r
        assert r["run_id"], r

    (retried,) = [r for r in logged_by("temporalio.activity") if r["activity_type"] == "process_order"]
    assert (retried["order_id"], retried["attempt"], retried["level"]) == (str(paid[0]), 1, "WARNING")
    for r in logged_by("temporalio.activity"):
        assert r["workflow_id"] == workflow_id and r["run_id"], r
    assert any(r.get("activity_type") == "deliver_webhook" for r in ours)
