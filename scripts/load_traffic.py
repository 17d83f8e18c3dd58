"""The load script's traffic and what it reads off it: progress reads at a steady rate, the
tenants' PROCESSING counts (the fairness cap), raw `progress` queries, and the wait for the end."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from temporalio.client import Client

from bulkops.domain.model import TERMINAL_STATUSES, OperationStatus


@dataclass
class Op:
    id: str
    tenant: str
    key: str
    total: int
    ok: int
    final: dict[str, Any] | None = None


@dataclass
class Readings:
    latencies_ms: list[float] = field(default_factory=list)
    # The same reads split by what the API had to do: a running operation is answered by the
    # workflow's `progress` query (through Temporal and the worker), an ended one from its row.
    running_ms: list[float] = field(default_factory=list)
    ended_ms: list[float] = field(default_factory=list)
    query_ms: list[float] = field(default_factory=list)  # the raw `progress` query, without the API
    errors: int = 0
    max_processing: dict[str, int] = field(default_factory=dict)
    cap_samples: int = 0


def percentile(xs: list[float], q: int) -> float | None:
    if len(xs) < 2:
        return round(xs[0], 2) if xs else None
    return round(statistics.quantiles(xs, n=100, method="inclusive")[q - 1], 2)


async def read_progress(
    api: httpx.AsyncClient, ops: list[Op], rate: float, stop: asyncio.Event, readings: Readings
) -> None:
    """GET /v1/bulk-operations/{id} round-robin at `rate` per second, each request its own task so a
    slow answer does not lower the rate (at most 100 in flight)."""
    gate = asyncio.Semaphore(100)
    tasks: set[asyncio.Task[None]] = set()

    async def one(op: Op) -> None:
        async with gate:
            t0 = time.perf_counter()
            try:
                r = await api.get(
                    f"/v1/bulk-operations/{op.id}", headers={"Authorization": f"Bearer {op.key}"}
                )
                ms = (time.perf_counter() - t0) * 1000
                readings.latencies_ms.append(ms)
                if r.status_code != 200:
                    readings.errors += 1
                elif OperationStatus(r.json()["status"]) in TERMINAL_STATUSES:
                    readings.ended_ms.append(ms)
                else:
                    readings.running_ms.append(ms)
            except httpx.HTTPError:
                readings.errors += 1

    loop = asyncio.get_running_loop()
    next_at = loop.time()
    for op in itertools.cycle(ops):
        if stop.is_set():
            break
        task = asyncio.create_task(one(op))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        next_at += 1 / rate
        await asyncio.sleep(max(0.0, next_at - loop.time()))
    await asyncio.gather(*tasks)


async def sample_cap(api: httpx.AsyncClient, ops: list[Op], stop: asyncio.Event, readings: Readings) -> None:
    keys = {op.tenant: op.key for op in ops}
    while not stop.is_set():
        for tenant, key in keys.items():
            r = await api.get(
                "/v1/bulk-operations",
                params={"status": "PROCESSING", "limit": 200},
                headers={"Authorization": f"Bearer {key}"},
            )
            if r.status_code == 200:
                n = len(r.json()["items"])
                readings.max_processing[tenant] = max(readings.max_processing.get(tenant, 0), n)
                readings.cap_samples += 1
        await asyncio.sleep(0.1)


async def query_directly(client: Client, ops: list[Op], stop: asyncio.Event, readings: Readings) -> None:
    """A few raw `progress` queries a second, to tell the workflow's answer time from the API's."""
    for op in itertools.cycle(ops):
        if stop.is_set():
            return
        t0 = time.perf_counter()
        with contextlib.suppress(Exception):  # an ended run still answers; a failure is just no sample
            await client.get_workflow_handle(f"bulk-op-{op.id}").query("progress")
            readings.query_ms.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.2)


async def wait_all(api: httpx.AsyncClient, ops: list[Op], deadline: float) -> None:
    """Until every operation's summary row is terminal; one list request per tenant per round."""
    keys = {op.tenant: op.key for op in ops}
    pending = {op.id: op for op in ops}
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} operations still running at the deadline")
        for key in keys.values():
            r = await api.get(
                "/v1/bulk-operations", params={"limit": 200}, headers={"Authorization": f"Bearer {key}"}
            )
            for item in r.json()["items"] if r.status_code == 200 else []:
                if item["id"] in pending and OperationStatus(item["status"]) in TERMINAL_STATUSES:
                    pending.pop(item["id"]).final = item
        await asyncio.sleep(0.5)


async def idle_reads(api: httpx.AsyncClient, ops: list[Op], rate: float, count: int = 250) -> list[float]:
    """The same reads once all has ended and the worker is idle: the API's own cost, for comparison."""
    readings, stop = Readings(), asyncio.Event()
    reader = asyncio.create_task(read_progress(api, ops, rate, stop, readings))
    await asyncio.sleep(count / rate)
    stop.set()
    await reader
    return readings.latencies_ms
