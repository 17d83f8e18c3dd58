"""Load check: 20 operations from 5 tenants at once while a client reads progress at 50 requests/s.

    uv run python scripts/load.py --embedded      # its own throwaway stack (PostgreSQL, Temporal dev
                                                  # server, a worker process, the API under uvicorn)
    uv run python scripts/load.py                 # the running stack (`uv run bulkops dev`)

It checks that every operation ends with exact counts and that no tenant ever had more than
BULKOPS_TENANT_MAX_RUNNING operations PROCESSING at once (sampled from the list endpoint), then prints
one JSON line with the API latency percentiles of the progress reads. Exit code 1 if a check failed.
Traffic goes to loopback only; every loop is bounded by --timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select

from bulkops.bench.cpu import CpuMeter
from bulkops.bench.stack import embedded_stack, running_stack_settings
from bulkops.bench.workload import seed_tenant
from bulkops.domain.model import OperationType
from bulkops.infra.temporal_client import connect
from bulkops.settings import Settings
from bulkops.store.db import make_engine, make_sessionmaker
from bulkops.store.tables import BulkOperationItem, Order
from load_traffic import (
    Op,
    Readings,
    idle_reads,
    percentile,
    query_directly,
    read_progress,
    sample_cap,
    wait_all,
)

log = logging.getLogger("bulkops.load")
ITEMS, ORDERS = BulkOperationItem.__table__, Order.__table__
# One tenant's operations, each over its own slice of the tenant's orders (so they never race for an
# order) plus a few unknown ids: every one ends PARTIAL_SUCCESS with known counts.
KINDS: list[tuple[OperationType, dict[str, Any]]] = [
    (OperationType.BULK_UPDATE, {"set": {"note": "load"}, "add_tags": ["load"]}),
    (OperationType.BULK_REFUND, {"reason": "load"}),
    (OperationType.BULK_CANCEL, {"reason": "load"}),
    (OperationType.BULK_EXPORT, {"format": "jsonl"}),
]
UNKNOWN_PER_OP = 5


async def prepare(sm: Any, api: httpx.AsyncClient, tenants: int, per_op: int) -> list[Op]:
    ops: list[Op] = []
    bodies: list[tuple[str, str, dict[str, Any], int]] = []
    for _ in range(tenants):
        tenant, key = await seed_tenant(sm, "load", per_op * len(KINDS), OperationType.BULK_REFUND)
        async with sm() as session:
            ids = (
                await session.scalars(
                    select(ORDERS.c.id).where(ORDERS.c.tenant_id == tenant).order_by(ORDERS.c.created_at)
                )
            ).all()
        for n, (op_type, params) in enumerate(KINDS):
            chosen = [str(i) for i in ids[n * per_op : (n + 1) * per_op]]
            chosen += [str(uuid.uuid4()) for _ in range(UNKNOWN_PER_OP)]
            body = {
                "operation_type": op_type.value,
                "order_ids": chosen,
                "parameters": params,
                "max_concurrency": 50,
            }
            bodies.append((tenant, key, body, per_op))

    async def post(tenant: str, key: str, body: dict[str, Any], ok: int) -> Op:
        r = await api.post("/v1/bulk-operations", json=body, headers={"Authorization": f"Bearer {key}"})
        r.raise_for_status()
        return Op(r.json()["id"], tenant, key, len(body["order_ids"]), ok)

    # All at once: the fairness cap has to queue the fourth operation of every tenant.
    ops = list(await asyncio.gather(*(post(*b) for b in bodies)))
    return ops


async def check_exact(sm: Any, ops: list[Op]) -> list[str]:
    problems = []
    for op in ops:
        f = op.final or {}
        want = ("PARTIAL_SUCCESS", op.total, op.total, op.ok, op.total - op.ok)
        got = (
            f.get("status"),
            f.get("total_count"),
            f.get("processed_count"),
            f.get("success_count"),
            f.get("failed_count"),
        )
        async with sm() as session:
            items = await session.scalar(
                select(func.count()).select_from(ITEMS).where(ITEMS.c.operation_id == uuid.UUID(op.id))
            )
        if got != want or items != op.total:
            problems.append(f"{op.id} ({f.get('operation_type')}): got {got} and {items} items, want {want}")
    return problems


async def run(
    settings: Settings, api_url: str, args: argparse.Namespace, stack: Any = None
) -> dict[str, Any]:
    engine = make_engine(settings, pool_size=5)
    sm = make_sessionmaker(engine)
    try:
        requests = [0]

        async def counted(_: httpx.Response) -> None:
            requests[0] += 1

        async with httpx.AsyncClient(
            base_url=api_url,
            timeout=30,
            limits=httpx.Limits(max_connections=100),
            event_hooks={"response": [counted]},
        ) as api:
            client = await connect(settings)
            if stack is not None:
                await stack.wait_ready(client, api)
            ops = await prepare(sm, api, args.tenants, args.orders_per_op)
            log.info("started %d operations for %d tenants", len(ops), args.tenants)
            readings, stop = Readings(), asyncio.Event()
            # The API's own CPU per request it answered (its process tree: uvicorn's workers too).
            cpu = CpuMeter({"api": stack.processes["api"]}) if stack is not None else None
            if cpu is not None:
                cpu.start()
            served_before = requests[0]
            t0 = time.monotonic()
            reader = asyncio.create_task(read_progress(api, ops, args.rate, stop, readings))
            sampler = asyncio.create_task(sample_cap(api, ops, stop, readings))
            querier = asyncio.create_task(query_directly(client, ops, stop, readings))
            try:
                await wait_all(api, ops, t0 + args.timeout)
            finally:
                stop.set()
                await asyncio.gather(reader, sampler, querier, return_exceptions=True)
            elapsed = time.monotonic() - t0
            served = requests[0] - served_before
            api_cpu = cpu.per_item_ms(served)["api"] if cpu is not None and served else None
            problems = await check_exact(sm, ops)
            idle = await idle_reads(api, ops, args.rate)
    finally:
        await engine.dispose()
    lat = readings.latencies_ms
    cap = settings.tenant_max_running
    cap_held = bool(readings.max_processing) and max(readings.max_processing.values()) <= cap
    return {
        "operations": len(ops),
        "tenants": args.tenants,
        "orders": sum(op.total for op in ops),
        "all_exact": not problems,
        "problems": problems[:5],
        "tenant_max_running": cap,
        "max_processing_seen": max(readings.max_processing.values(), default=0),
        "cap_held": cap_held,
        "cap_samples": readings.cap_samples,
        "progress_requests": len(lat),
        "progress_rps": round(len(lat) / elapsed, 1),
        "errors": readings.errors,
        "p50_ms": percentile(lat, 50),
        "p95_ms": percentile(lat, 95),
        "p99_ms": percentile(lat, 99),
        "max_ms": round(max(lat), 2) if lat else None,
        "elapsed_s": round(elapsed, 1),
        "running_reads": len(readings.running_ms),
        "running_p95_ms": percentile(readings.running_ms, 95),
        "ended_reads": len(readings.ended_ms),
        "ended_p95_ms": percentile(readings.ended_ms, 95),
        "query_samples": len(readings.query_ms),
        "query_p50_ms": percentile(readings.query_ms, 50),
        "query_p95_ms": percentile(readings.query_ms, 95),
        "idle_p50_ms": percentile(idle, 50),
        "idle_p95_ms": percentile(idle, 95),
        "api_requests": served,
        "api_cpu_ms_per_request": api_cpu,
        "api_workers": settings.api_workers,
        "embedded": stack is not None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--embedded", action="store_true", help="run on a throwaway stack of its own")
    parser.add_argument("--api-url", help="default: http://BULKOPS_API_HOST:BULKOPS_API_PORT")
    parser.add_argument("--tenants", type=int, default=5)
    parser.add_argument("--orders-per-op", type=int, default=250)
    parser.add_argument("--rate", type=float, default=50.0, help="progress reads per second")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.embedded:
        with embedded_stack() as stack:
            result = asyncio.run(run(stack.settings, stack.api_url, args, stack))
    else:
        settings = running_stack_settings(Settings())
        url = args.api_url or f"http://{settings.api_host}:{settings.api_port}"
        host = httpx.URL(url).host
        if host not in ("127.0.0.1", "localhost", "::1"):
            parser.error("the load script only targets loopback addresses")
        result = asyncio.run(run(settings, url, args))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0 if result["all_exact"] and result["cap_held"] and not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
