"""The workflow is unsandboxed for speed, so determinism is checked here: real histories replay."""

from __future__ import annotations

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from bulkops.worker import WORKFLOWS
from tests.harness import Harness
from tests.support import SlowOrders


@pytest.mark.parametrize("local_activities", [True, False], ids=["local", "regular"])
async def test_histories_replay_deterministically(harness: Harness, local_activities: bool) -> None:
    h = harness
    h.configure(local_activities=local_activities)
    await h.start_worker(SlowOrders(h.order_pool, delay=0.02))
    a = await h.tenant()
    ids = await h.seed(a, 40) + await h.seed(a, 5, status="SHIPPED")
    op = await h.start(
        a,
        {
            "operation_type": "BULK_CANCEL",
            "order_ids": [str(i) for i in ids],
            "max_concurrency": 3,
            "failure_threshold": {"max_failure_ratio": 0.9, "min_processed": 5},
        },
    )
    if not local_activities:  # (with local activities an update waits for the held workflow task)
        await h.wait_for(a, op["id"], lambda b: b["processed_count"] >= 5)
        assert (await a.post(f"/v1/bulk-operations/{op['id']}/pause")).status_code == 200
        assert (await a.post(f"/v1/bulk-operations/{op['id']}/resume")).status_code == 200
    final = await h.wait_end(a, op["id"])
    assert (final["success_count"], final["failed_count"]) == (40, 5)
    history = await h.client.get_workflow_handle(f"bulk-op-{op['id']}").fetch_history()
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
