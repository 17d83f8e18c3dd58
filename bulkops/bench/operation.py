"""One operation through the API, end to end, with everything the bench reads while it runs: the
POST, the progress polled ~10 times a second (GET and the raw query taking turns), the end as the
summary row shows it, each run's history, the worker's memory and every process's CPU, and the size
of what it left in PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio.client import Client

from bulkops.bench.cpu import CpuMeter
from bulkops.bench.stack import MB, RssSampler
from bulkops.bench.workload import (
    PARAMETERS,
    BenchError,
    Poll,
    history_per_run,
    p95_ms,
    poll_in_turn,
    statuses_for,
    wait_terminal,
)
from bulkops.domain.model import DEFAULT_MAX_CONCURRENCY, ItemStatus, OperationType
from bulkops.settings import Settings
from bulkops.store.tables import BulkOperation, BulkOperationItem
from workflows.bulk_operation import BulkOperationWorkflow

OPS, ITEMS = BulkOperation.__table__, BulkOperationItem.__table__
# What an operation leaves in PostgreSQL (whole relations, indexes and TOAST included).
SIZES = text(
    "SELECT pg_total_relation_size('bulk_operation_targets'), pg_total_relation_size('bulk_operation_items')"
)


@dataclass
class BenchOptions:
    orders: int
    op_type: OperationType = OperationType.BULK_CANCEL
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    skip_direct: bool = False
    with_ceiling: bool = False
    poll_hz: float = 10.0
    timeout_s: float | None = None  # default: as if it ran at only 5 orders/s, and at least 10 min


@dataclass
class Target:
    """The stack under test: its database and Temporal (settings), its API and its worker process(es)."""

    settings: Settings
    client: Client
    api: httpx.AsyncClient
    worker_pids: list[int]
    embedded: bool = False
    # CPU accounting: part of the stack → its pids (dev_server, postgres, api; worker and bench added).
    processes: dict[str, list[int]] = field(default_factory=dict)

    def cpu_meter(self) -> CpuMeter:
        parts = {"dev_server": [], "postgres": [], "api": [], **self.processes}
        return CpuMeter({**parts, "worker": self.worker_pids, "bench": [os.getpid()]})


async def run_temporal(
    opts: BenchOptions, target: Target, sm: async_sessionmaker, key: str
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    body = {
        "operation_type": opts.op_type.value,
        "filter": {"statuses": statuses_for(opts.op_type)},
        "parameters": PARAMETERS[opts.op_type],
        "max_concurrency": opts.max_concurrency,
    }
    period = 1.0 / opts.poll_hz
    done = asyncio.Event()
    cpu = target.cpu_meter()
    with RssSampler(target.worker_pids) as rss:
        cpu.start()
        t0 = time.perf_counter()
        r = await target.api.post("/v1/bulk-operations", json=body, headers=headers)
        if r.status_code != 202:
            raise BenchError(f"POST /v1/bulk-operations answered {r.status_code}: {r.text}")
        op = r.json()
        handle = target.client.get_workflow_handle(op["workflow_id"])

        async def get_progress() -> None:
            got = await target.api.get(f"/v1/bulk-operations/{op['id']}", headers=headers)
            if got.status_code != 200:
                raise BenchError(f"GET answered {got.status_code}: {got.text}")

        async def query_progress() -> None:
            await handle.query(BulkOperationWorkflow.progress)

        api_get, query = Poll("GET", get_progress), Poll("query", query_progress)
        poller = asyncio.create_task(poll_in_turn([api_get, query], done, period))
        try:
            timeout = opts.timeout_s or max(600.0, opts.orders / 5)
            t_end = await wait_terminal(sm, uuid.UUID(op["id"]), t0 + timeout)
        finally:
            done.set()
            await asyncio.wait([poller], timeout=60)  # a request still in flight counts too
            poller.cancel()
        cpu_ms = cpu.per_item_ms(opts.orders)
        await handle.result()  # the run has closed, so its history is final
    runs, max_events = await history_per_run(target.client, op["workflow_id"])
    async with sm() as session:
        row = (await session.execute(select(OPS).where(OPS.c.id == uuid.UUID(op["id"])))).one()
        succeeded = await session.scalar(
            select(func.count())
            .select_from(ITEMS)
            .where(ITEMS.c.operation_id == row.id, ITEMS.c.status == ItemStatus.SUCCEEDED.value)
        )
        targets_bytes, items_bytes = (await session.execute(SIZES)).one()
    wall = t_end - t0
    return {
        "operation_id": op["id"],
        "tenant_id": row.tenant_id,
        "status": row.status,
        "total_count": row.total_count,
        "success_count": row.success_count,
        "failed_count": row.failed_count,
        "items_succeeded": int(succeeded or 0),
        "wall_s": round(wall, 3),
        "server_s": round((row.completed_at - row.created_at).total_seconds(), 3),
        "temporal_orders_per_s": round(row.processed_count / wall, 1),
        "cpu_ms_per_order": cpu_ms,
        "runs": runs,
        "max_history_events_per_run": max_events,
        "worker_peak_rss_mb": rss.peak_mb,
        "progress_query_p95_ms": p95_ms(query.latencies),
        "progress_query_samples": len(query.latencies),
        "progress_query_errors": query.errors,
        "api_get_p95_ms": p95_ms(api_get.latencies),
        "api_get_samples": len(api_get.latencies),
        "api_get_errors": api_get.errors,
        # Every operation's rows in these tables, the bench's baselines included (none with --skip-direct).
        "postgres_mb": {
            "bulk_operation_targets": round(targets_bytes / MB, 1),
            "bulk_operation_items": round(items_bytes / MB, 1),
        },
    }
