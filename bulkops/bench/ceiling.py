"""`bulkops bench --ceiling`: the platform's own ceiling here, one workflow running one *empty*
activity per item.

    uv run bulkops bench --ceiling --orders 10000 --max-concurrency 50

Same dev server flags as `bulkops dev` (bulkops/devstack/temporal.py), same worker tuning as
`worker.py` (unsandboxed, slots, polls and eager dispatch from the settings, uvloop), the same sliding
window as BulkOperationWorkflow —
but the activity does nothing: no database, no rules. Whatever rate this prints is the most any
one-activity-per-order design can reach here, before a single order is touched; `bulkops bench`
compares bulkops against it (README, Performance), in the same invocation with `--with-ceiling`,
on the same dev server. The CLI prints the result as one JSON line.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from bulkops.bench.cpu import CpuMeter
from bulkops.bench.workload import p95_ms
from bulkops.devstack.postgres import free_port
from bulkops.devstack.temporal import TemporalDevServer
from bulkops.infra import aio
from bulkops.infra.temporal_client import connect
from bulkops.settings import Settings
from bulkops.worker import worker_tuning


@activity.defn(name="noop")
async def noop(item: int) -> int:
    return item


@workflow.defn(name="CeilingWorkflow", sandboxed=False)
class CeilingWorkflow:
    def __init__(self) -> None:
        self.in_flight = 0
        self.done = 0
        self.tasks: set[asyncio.Task[None]] = set()

    async def _one(self, i: int) -> None:
        await workflow.execute_activity(
            noop, i, start_to_close_timeout=timedelta(seconds=10), summary=f"item {i}"
        )
        self.in_flight -= 1
        self.done += 1

    @workflow.query
    def progress(self) -> int:
        return self.done

    @workflow.run
    async def run(self, items: int, window: int) -> int:
        for i in range(items):
            await workflow.wait_condition(lambda: self.in_flight < window)
            self.in_flight += 1
            task = asyncio.create_task(self._one(i))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        await workflow.wait_condition(lambda: self.in_flight == 0)
        return self.done


async def measure(
    client: Client, items: int, window: int, settings: Settings, cpu: CpuMeter | None = None
) -> dict[str, Any]:
    """One ceiling run on `client`'s Temporal, its worker in this process with bulkops's own worker
    tuning (`settings`); `cpu` (if given) is read over exactly the run."""
    queue = f"ceiling-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[CeilingWorkflow],
        activities=[noop],
        build_id="ceiling",
        **worker_tuning(settings),
    ):
        if cpu is not None:
            cpu.start()
        t0 = time.perf_counter()
        handle = await client.start_workflow(
            CeilingWorkflow.run, args=[items, window], id=f"ceiling-{queue}", task_queue=queue
        )
        latencies: list[float] = []

        async def poll() -> None:  # the bench's reader: a query every 100 ms while it runs
            while True:
                q0 = time.perf_counter()
                await handle.query(CeilingWorkflow.progress)
                latencies.append(time.perf_counter() - q0)
                await asyncio.sleep(0.1)

        poller = asyncio.create_task(poll())
        done = await handle.result()
        elapsed = time.perf_counter() - t0
        poller.cancel()
    result: dict[str, Any] = {
        "items": done,
        "window": window,
        "empty_activities_per_s": round(done / elapsed, 1),
        "seconds": round(elapsed, 2),
        "query_p95_ms": p95_ms(latencies),
    }
    if cpu is not None:
        result["cpu_ms_per_item"] = cpu.per_item_ms(done)
    return result


def run_ceiling(items: int, window: int) -> dict[str, Any]:
    """On its own throwaway dev server; the worker runs in this process (its CPU is ours)."""
    root = Path(tempfile.mkdtemp(prefix="bulkops-ceiling-"))
    server = TemporalDevServer(root / "temporal.db", free_port())
    server.start()
    try:
        assert server.pid is not None
        cpu = CpuMeter({"dev_server": [server.pid], "worker": [os.getpid()]})
        return aio.run(_measure_on(server.address, items, window, cpu))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _measure_on(address: str, items: int, window: int, cpu: CpuMeter) -> dict[str, Any]:
    settings = Settings(TEMPORAL_ADDRESS=address)
    return await measure(await connect(settings), items, window, settings, cpu)
