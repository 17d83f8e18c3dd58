"""Per-tenant fairness: at most N operations of a tenant process at once; others start at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from bulkops.domain.model import OPERATION_WORKFLOW_PREFIX
from bulkops.worker import WORKFLOWS
from tests.harness import Harness, Stack
from tests.support import SlowOrders
from workflows.contracts import GRANT_SIGNAL, RELEASE_SIGNAL, REQUEST_SIGNAL, SlotRequest


async def test_tenant_cap_holds_and_other_tenants_are_not_blocked(
    stack: Stack, client: Client, harness: Harness
) -> None:
    settings = harness.settings.model_copy(update={"tenant_max_running": 2})
    async with Harness.open(stack, client, settings) as h:
        await h.start_worker(SlowOrders(h.order_pool, delay=0.02))
        a, b = await h.tenant("busy"), await h.tenant("quiet")
        a_ids = [await h.seed(a, 30) for _ in range(5)]
        b_ids = [await h.seed(b, 30) for _ in range(2)]
        a_ops = []
        for ids in a_ids:
            a_ops.append(
                (
                    await h.start(
                        a,
                        {
                            "operation_type": "BULK_CANCEL",
                            "order_ids": [str(i) for i in ids],
                            "max_concurrency": 2,
                        },
                    )
                )["id"]
            )
        peak = 0
        b_started_while_a_queued = False
        b_ops: list[str] = []
        for _ in range(2000):
            listed = (await a.get("/v1/bulk-operations?limit=50")).json()["items"]
            running = [o for o in listed if o["status"] in ("PROCESSING", "PAUSED")]
            peak = max(peak, len(running))
            pending = [o for o in listed if o["status"] == "PENDING"]
            if not b_ops and len(pending) >= 2:
                for ids in b_ids:
                    b_ops.append(
                        (
                            await h.start(
                                b, {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids]}
                            )
                        )["id"]
                    )
                first_b = await h.wait_for(b, b_ops[0], lambda x: x["status"] != "PENDING", timeout=30)
                still = (await a.get("/v1/bulk-operations?status=PENDING")).json()["items"]
                b_started_while_a_queued = first_b["status"] != "PENDING" and len(still) > 0
            if all(o["status"] in ("COMPLETED",) for o in listed) and len(listed) == 5:
                break
            await asyncio.sleep(0.05)
        assert peak == 2
        assert b_started_while_a_queued
        rows = [await h.summary_row(op) for op in a_ops]
        assert all((r.status, r.processed_count, r.success_count) == ("COMPLETED", 30, 30) for r in rows)
        # Slots are handed over only after the previous holder wrote its summary: never 3 intervals overlap.
        edges = sorted(
            [(r.started_at, 1) for r in rows] + [(r.completed_at, -1) for r in rows],
            key=lambda e: (e[0], e[1]),
        )
        level = 0
        for _, step in edges:
            level += step
            assert level <= 2
        coordinator = await client.get_workflow_handle(f"bulk-tenant-{a.id}").fetch_history()
        granted = _grants_in_creation_order(coordinator)
        assert sorted(granted) == sorted(r.id for r in rows)  # each once
        replay = await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
            coordinator, raise_on_replay_failure=False
        )
        assert replay.replay_failure is None
        for op in b_ops:
            final = await h.wait_end(b, op)
            assert (final["status"], final["success_count"]) == ("COMPLETED", 30)


def _grants_in_creation_order(history: WorkflowHistory) -> list[uuid.UUID]:
    """The operations the coordinator granted a slot, in the order it granted them, each checked to
    be the earliest created of those waiting when it was granted. An operation whose request reaches
    the coordinator while a slot is free takes it, even before one created earlier that has not asked
    yet (its activity ran later): the order holds among the waiting. A signal that comes before a
    grant in the history was delivered to the task that decided it."""
    convert = pydantic_data_converter.payload_converter
    waiting: dict[uuid.UUID, datetime] = {}
    running: set[uuid.UUID] = set()
    granted: list[uuid.UUID] = []
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signaled = e.workflow_execution_signaled_event_attributes
            if signaled.signal_name == REQUEST_SIGNAL:
                (req,) = convert.from_payloads(list(signaled.input.payloads), [SlotRequest])
                if req.operation_id not in running:
                    assert req.created_at is not None
                    waiting.setdefault(req.operation_id, req.created_at)
            elif signaled.signal_name == RELEASE_SIGNAL:
                (op_id,) = convert.from_payloads(list(signaled.input.payloads), [uuid.UUID])
                running.discard(op_id)
                waiting.pop(op_id, None)
        elif e.event_type == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
            grant = e.signal_external_workflow_execution_initiated_event_attributes
            assert grant.signal_name == GRANT_SIGNAL
            op_id = uuid.UUID(grant.workflow_execution.workflow_id.removeprefix(OPERATION_WORKFLOW_PREFIX))
            assert waiting, f"{op_id} granted a slot it had not asked for"
            assert op_id == min(waiting, key=lambda o: (waiting[o], str(o))), (op_id, waiting)
            del waiting[op_id]
            running.add(op_id)
            granted.append(op_id)
    return granted


async def test_a_slot_held_by_a_terminated_operation_is_reclaimed(
    stack: Stack, client: Client, harness: Harness
) -> None:
    """Terminating an operation in the Temporal UI sends no `release`: the coordinator notices."""
    settings = harness.settings.model_copy(update={"tenant_max_running": 1, "tenant_slot_check_s": 1.0})
    async with Harness.open(stack, client, settings) as h:
        await h.start_worker(SlowOrders(h.order_pool, delay=0.05))
        a = await h.tenant("stuck")
        first_ids, second_ids = await h.seed(a, 400), await h.seed(a, 20)
        first = await h.start(
            a,
            {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in first_ids], "max_concurrency": 2},
        )
        await h.wait_for(a, first["id"], lambda x: x["processed_count"] > 0)
        second = await h.start(
            a, {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in second_ids]}
        )
        await asyncio.sleep(2)
        assert (await a.get(f"/v1/bulk-operations/{second['id']}")).json()["status"] == "PENDING"

        await client.get_workflow_handle(first["workflow_id"]).terminate("operator pulled the plug")
        final = await h.wait_end(a, second["id"], timeout=60)
        assert (final["status"], final["success_count"]) == ("COMPLETED", 20)
        coordinator = client.get_workflow_handle(f"bulk-tenant-{a.id}")
        # The summary row is written before the slot is released: give the release its moment.
        for _ in range(100):
            state = await coordinator.query("snapshot")
            if not state["running"]:
                break
            await asyncio.sleep(0.1)
        assert state["running"] == [] and state["queue"] == []
