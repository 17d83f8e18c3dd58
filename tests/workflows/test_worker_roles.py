"""Split worker roles: a workflows-only and an activities-only worker together run an operation."""

from __future__ import annotations

import asyncio

from bulkops.worker import build_worker
from tests.harness import Harness


async def test_split_roles_run_an_operation(harness: Harness) -> None:
    h = harness
    a = await h.tenant()
    ids = await h.seed(a, 30) + await h.seed(a, 5, status="DELIVERED")
    wf_settings = h.settings.model_copy(update={"worker_role": "workflows"})
    act_settings = h.settings.model_copy(update={"worker_role": "activities"})
    async with build_worker(wf_settings, h.client) as wf, build_worker(act_settings, h.client) as acts:
        assert wf.config()["activities"] == [] and acts.config()["workflows"] == []
        tasks = [asyncio.create_task(wf.run()), asyncio.create_task(acts.run())]
        try:
            op = await h.start(a, {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids]})
            final = await h.wait_end(a, op["id"])
        finally:
            await wf.shutdown()
            await acts.shutdown()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert (final["status"], final["success_count"], final["failed_count"]) == ("PARTIAL_SUCCESS", 30, 5)
    assert len(await h.items(op["id"])) == 35
