"""What the Temporal UI shows, read through the client: visibility, summary, details, activity summaries."""

from __future__ import annotations

import asyncio
import json

from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client

from tests.harness import Harness
from workflows.search_attributes import OPERATION_STATUS, OPERATION_TYPE, TENANT_ID


async def _listed(client: Client, query: str, want: set[str], limit: float = 30) -> set[str]:
    """Visibility is eventually consistent: poll until the query lists what is expected (or time out)."""
    found: set[str] = set()
    async with asyncio.timeout(limit):
        while found != want:
            found = {wf.id async for wf in client.list_workflows(query)}
            if found != want:
                await asyncio.sleep(0.3)
    return found


async def test_operation_reads_in_temporal_ui(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant("acme")
    ids = await h.seed(a, 3, customer_email="secret@example.com")
    op = await h.start(
        a,
        {
            "operation_type": "BULK_REFUND",
            "order_ids": [str(i) for i in ids],
            "parameters": {"reason": "recall"},
        },
    )
    final = await h.wait_end(a, op["id"])
    assert final["status"] == "COMPLETED"
    wf_id = op["workflow_id"]
    assert op["links"]["temporal_ui"].endswith(f"/namespaces/default/workflows/{wf_id}")

    query = f"TenantId='{a.id}' AND BulkOperationStatus='COMPLETED'"
    assert await _listed(h.client, query, {wf_id}) == {wf_id}
    by_type = f"TenantId='{a.id}' AND BulkOperationType='BULK_REFUND'"
    assert await _listed(h.client, by_type, {wf_id}) == {wf_id}
    paused = f"TenantId='{a.id}' AND BulkOperationStatus='PAUSED'"
    assert [wf async for wf in h.client.list_workflows(paused)] == []

    handle = h.client.get_workflow_handle(wf_id)
    desc = await handle.describe()
    attrs = desc.typed_search_attributes
    assert (attrs.get(TENANT_ID), attrs.get(OPERATION_TYPE), attrs.get(OPERATION_STATUS)) == (
        a.id,
        "BULK_REFUND",
        "COMPLETED",
    )
    assert await desc.static_summary() == f"BULK_REFUND · 3 orders · tenant {a.id}"
    details = await desc.static_details()
    assert details is not None and "secret@example.com" not in details
    parsed = json.loads(details.removeprefix("```json\n").removesuffix("\n```"))
    assert parsed["type"] == "BULK_REFUND" and parsed["tenant"] == a.id
    assert parsed["parameters"] == {"reason": "recall"} and parsed["initiated_by"] == "admin (key admin)"

    # Current details are what the workflow last set; the UI reads them through this built-in query.
    meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert meta.current_details.startswith("**COMPLETED**")
    assert "3/3 processed" in meta.current_details and "3 succeeded · 0 failed" in meta.current_details

    # Each per-order activity carries a summary naming its order (the UI shows it in the event list).
    # Run as a local activity, it is recorded as a marker event, which carries the same summary.
    converter = h.client.data_converter.payload_converter
    order_summaries = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            per_order = event.activity_task_scheduled_event_attributes.activity_type.name == "process_order"
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            per_order = event.marker_recorded_event_attributes.marker_name == "core_local_activity"
        else:
            per_order = False
        if not per_order:
            continue
        assert event.user_metadata.HasField("summary"), event
        order_summaries.append(converter.from_payload(event.user_metadata.summary, str))
    assert sorted(order_summaries) == sorted(f"BULK_REFUND order {i}" for i in ids)
