"""A `BulkOperationWorkflow` started by hand on the cluster (port 7233 is published) gets nowhere:
pointed at an operation with another tenant's id, with other parameters, with a made-up run state, or
under a workflow id that is not the row's own, it changes no order, records no outcome and no refund,
and fails."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError

from bulkops.domain.model import OperationStatus
from tests.harness import ITEMS, Harness
from workflows.contracts import BULK_OPERATION_WORKFLOW, BulkOperationInput, RunState


async def test_a_workflow_started_by_hand_changes_nothing(harness: Harness) -> None:
    h = harness
    a, b = await h.tenant("victim"), await h.tenant("attacker")
    ids = await h.seed(a, 5, status="PAID", total_cents=3000)
    theirs = await h.seed(b, 2, status="PAID", total_cents=3000)
    body = {
        "operation_type": "BULK_REFUND",
        "order_ids": [str(i) for i in ids],
        "parameters": {"amount_cents": 100},
    }
    op = await h.start(a, body)  # no worker yet: nothing has run
    await h.client.get_workflow_handle(op["workflow_id"]).terminate("make room for the forgeries")
    await h.start_worker()

    row = await h.summary_row(op["id"])
    honest = BulkOperationInput(
        operation_id=row.id,
        tenant_id=row.tenant_id,
        operation_type=row.operation_type,
        parameters=row.parameters,
        activity_max_attempts=2,
        use_fairness=False,
    )
    running = RunState(status=OperationStatus.PROCESSING, slot_granted=True, total_count=5)
    forgeries: list[tuple[str, dict[str, Any]]] = [
        (op["workflow_id"], {"tenant_id": b.id}),
        (op["workflow_id"], {"parameters": {"amount_cents": 3000}}),
        (op["workflow_id"], {"parameters": {"amount_cents": 3000}, "state": running}),  # skips the snapshot
        (op["workflow_id"], {"tenant_id": b.id, "state": running}),
        (f"forged-{uuid.uuid4()}", {}),  # the row's own input, but not the row's workflow
        (f"forged-{uuid.uuid4()}", {"state": running}),
    ]
    for workflow_id, changes in forgeries:
        handle = await h.client.start_workflow(
            BULK_OPERATION_WORKFLOW,
            honest.model_copy(update=changes),
            id=workflow_id,
            task_queue=h.settings.task_queue,
        )
        with pytest.raises(WorkflowFailureError):
            async with asyncio.timeout(30):
                await handle.result()

    assert await h.refunds(op["id"]) == []
    assert await h.count(ITEMS, ITEMS.c.operation_id == uuid.UUID(op["id"])) == 0
    orders = await h.orders(ids + theirs)
    assert all(o.refunded_cents == 0 and o.status == "PAID" for o in orders.values())
    assert (await h.summary_row(op["id"])).processed_count == 0
