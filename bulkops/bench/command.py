"""`bulkops bench`: what durability costs, measured end to end on one stack.

Two runs over two fresh tenants of N identical orders each:
- through Temporal: POST /v1/bulk-operations, timed client-side from the POST until the summary row
  shows the terminal status (watched in Postgres every 50 ms, so that a slow progress answer cannot
  stretch the measured time), while the progress is polled ~10 times a second, GET
  /v1/bulk-operations/{id} and the raw Temporal `progress` query taking turns (one client's load);
  `progress_query_p95_ms` is the raw query's, `api_get_p95_ms` the GET's (which runs that query too);
- the baseline: the same per-order code (`OrderActivities.process_order`, one transaction per order)
  called from a bounded-concurrency asyncio loop straight against the same Postgres, no Temporal
  (as many lanes as `max_concurrency`, capped at the connection pool).
Both share one machine with whatever else runs on it: the JSON carries the load average before and
after, so that numbers from a busy box read as such.
Prints one JSON line; logs go to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text

from bulkops.bench.ceiling import measure as measure_ceiling
from bulkops.bench.cpu import CpuMeter, running_stack_processes
from bulkops.bench.operation import BenchOptions, Target, run_temporal
from bulkops.bench.stack import embedded_stack, find_worker_pids, running_stack_settings
from bulkops.bench.workload import TYPES, BenchError, commit_id, run_direct, seed_tenant
from bulkops.domain.model import DEFAULT_MAX_CONCURRENCY
from bulkops.infra import aio
from bulkops.infra.temporal_client import connect
from bulkops.settings import Settings
from bulkops.store.db import make_engine, make_sessionmaker

log = logging.getLogger("bulkops.bench")
# The one-lane baseline (one order after another, the audited service's loop) on at most this many.
SEQUENTIAL_ORDERS = 2_000


async def run_bench(opts: BenchOptions, target: Target) -> dict[str, Any]:
    engine = make_engine(target.settings)
    sm = make_sessionmaker(engine)
    direct: dict[str, Any] = {}
    try:
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        _, key = await seed_tenant(sm, "bench", opts.orders, opts.op_type)
        baselines = []
        if not opts.skip_direct:
            # As many lanes as `max_concurrency`, but no more than the worker's order pool holds (a
            # plain loop would be written so; more lanes only queue on the pool).
            wide = max(1, min(opts.max_concurrency, target.settings.db_pool_size))
            for prefix, n, lanes in (("direct", opts.orders, wide), ("sequential", SEQUENTIAL_ORDERS, 1)):
                tenant, _ = await seed_tenant(sm, f"bench-{prefix}", min(n, opts.orders), opts.op_type)
                baselines.append((prefix, tenant, lanes))
        async with sm() as session, session.begin():
            await session.execute(text("ANALYZE orders"))
        log.info("seeded %s orders per tenant in %.1f s", opts.orders, time.perf_counter() - t0)
        temporal = await run_temporal(opts, target, sm, key)
        log.info("through Temporal: %s", temporal)
        for prefix, tenant, lanes in baselines:
            direct |= await run_direct(sm, target.settings, tenant, opts.op_type, lanes, prefix)
    finally:
        await engine.dispose()
    ceiling = (
        await measure_ceiling(
            target.client,
            opts.orders,
            opts.max_concurrency,
            target.settings,
            CpuMeter({"dev_server": target.processes.get("dev_server", []), "worker": [os.getpid()]}),
        )
        if opts.with_ceiling
        else None
    )
    t_rate, d_rate = temporal["temporal_orders_per_s"], direct.get("direct_orders_per_s")
    c_rate = ceiling["empty_activities_per_s"] if ceiling else None
    worker_settings = {
        k: v for k, v in target.settings.model_dump().items() if isinstance(v, int) and "port" not in k
    }
    return {
        "orders": opts.orders,
        "temporal_orders_per_s": t_rate,
        "ceiling_orders_per_s": c_rate,
        "ratio_to_ceiling": round(t_rate / c_rate, 3) if c_rate else None,
        "direct_orders_per_s": d_rate,
        "sequential_orders_per_s": direct.get("sequential_orders_per_s"),
        "ratio": round(t_rate / d_rate, 3) if d_rate else None,
        "cpu_ms_per_order": temporal.pop("cpu_ms_per_order"),
        "max_history_events_per_run": temporal.pop("max_history_events_per_run"),
        "postgres_mb": temporal.pop("postgres_mb"),
        "worker_peak_rss_mb": temporal.pop("worker_peak_rss_mb"),
        "progress_query_p95_ms": temporal.pop("progress_query_p95_ms"),
        "type": opts.op_type.value,
        "max_concurrency": opts.max_concurrency,
        **temporal,
        **direct,
        "ceiling": ceiling,
        "embedded": target.embedded,
        "worker_processes": len(target.worker_pids),
        "settings": worker_settings,  # the bench's own; the worker's too when embedded
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "commit": commit_id(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


async def _bench_on(
    opts: BenchOptions,
    settings: Settings,
    api_url: str,
    worker_pids: list[int],
    processes: dict[str, list[int]],
    stack: Any = None,
) -> dict[str, Any]:
    client = await connect(settings)
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as api:
        if stack is not None:
            await stack.wait_ready(client, api)
        target = Target(settings, client, api, worker_pids, stack is not None, processes)
        return await run_bench(opts, target)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so that SIGTERM, like Ctrl-C, unwinds through the stack's cleanup


def bench(
    opts: BenchOptions,
    *,
    embedded: bool = False,
    api_url: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The whole command: on a fresh embedded stack, or on the running one that `settings` names."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    if embedded:
        with embedded_stack() as stack:
            return aio.run(
                _bench_on(opts, stack.settings, stack.api_url, stack.worker_pids(), stack.processes, stack)
            )
    settings = running_stack_settings(settings or Settings())
    settings.require_database_url()
    pids = find_worker_pids(settings)
    if not pids:
        log.warning("no worker process found (worker.py / bulkops worker / bulkops dev): no RSS reported")
    url = api_url or f"http://{settings.api_host}:{settings.api_port}"
    return aio.run(_bench_on(opts, settings, url, pids, running_stack_processes(settings)))


def run_command(
    orders: int,
    type_name: str,
    *,
    embedded: bool = False,
    api_url: str | None = None,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    skip_direct: bool = False,
    with_ceiling: bool = False,
) -> int:
    """`bulkops bench` / `python -m bulkops.bench`: the JSON line on stdout, logs on stderr; exit code."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per progress poll
    if type_name.lower() not in TYPES:
        log.error("--type must be one of %s", ", ".join(TYPES))
        return 2
    opts = BenchOptions(
        orders=orders,
        op_type=TYPES[type_name.lower()],
        max_concurrency=max_concurrency,
        skip_direct=skip_direct,
        with_ceiling=with_ceiling,
    )
    try:
        result = bench(opts, embedded=embedded, api_url=api_url)
    except (BenchError, RuntimeError, httpx.HTTPError) as exc:
        log.error("bench failed: %s", exc)
        return 1
    except Exception:
        log.exception("bench failed")
        return 1
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0
