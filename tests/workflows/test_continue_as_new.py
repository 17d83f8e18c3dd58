"""An operation forced through several continue-as-new runs keeps exact counts and a live query."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client

from tests.harness import Harness, Stack
from tests.support import SlowOrders


@pytest.mark.parametrize("local_activities", [True, False], ids=["local", "regular"])
async def test_counts_survive_many_runs(
    stack: Stack, client: Client, harness: Harness, local_activities: bool
) -> None:
    settings = harness.settings.model_copy(
        update={"max_events_per_run": 300, "local_activities": local_activities}
    )
    async with Harness.open(stack, client, settings) as h:
        await h.start_worker(SlowOrders(h.order_pool, delay=0.005))
        a = await h.tenant()
        good = await h.seed(a, 350)
        bad = await h.seed(a, 50, status="DELIVERED")
        op = await h.start(
            a,
            {
                "operation_type": "BULK_CANCEL",
                "filter": {"statuses": ["PAID", "DELIVERED"]},
                "max_concurrency": 8,
            },
        )
        handle = client.get_workflow_handle(f"bulk-op-{op['id']}")
        seen_runs: set[int] = set()
        processed: list[int] = []
        while True:
            p = await handle.query("progress")
            seen_runs.add(p["run"])
            processed.append(p["processed_count"])
            if p["status"] in ("COMPLETED", "PARTIAL_SUCCESS", "FAILED"):
                break
            await asyncio.sleep(0.05)
        final = await h.wait_end(a, op["id"])
        assert processed == sorted(processed)  # the query never goes backwards across runs
        assert (
            final["total_count"],
            final["processed_count"],
            final["success_count"],
            final["failed_count"],
        ) == (400, 400, 350, 50)
        items = await h.items(op["id"])
        assert len(items) == 400 and len({i.order_id for i in items}) == 400
        assert {i.order_id for i in items if i.status == "SUCCEEDED"} == set(good)
        assert {i.order_id for i in items if i.status == "FAILED"} == set(bad)
        assert len(final["errors"]) == 50
        assert p["run"] >= 4, (p["run"], p["history_length"], p["max_run_history"])
        assert p["max_run_history"] <= 300, p
        assert len(seen_runs) >= 2
        # Visibility is eventually consistent: wait until it lists every run, then check each one.
        for _ in range(100):
            runs = [w async for w in client.list_workflows(f"WorkflowId='bulk-op-{op['id']}'")]
            if len(runs) >= p["run"]:
                break
            await asyncio.sleep(0.1)
        assert len(runs) == p["run"]
        for run in runs:
            desc = await client.get_workflow_handle(run.id, run_id=run.run_id).describe()
            assert desc.history_length <= 300, desc.history_length
