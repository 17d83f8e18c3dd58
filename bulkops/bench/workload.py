"""The bench's workload and readings: the orders it seeds, the parameters it sends, the baseline
loop, and how it reads back latencies, the end of an operation and each run's history length.

The baseline calls the very code the worker runs per order (`OrderActivities.process_order`: one
transaction per order, same rules, same outcome rows) from a plain bounded-concurrency asyncio loop,
so that the difference to the Temporal run is the price of durability and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio.client import Client

from activities.contracts import ProcessOrderInput
from activities.orders import OrderActivities
from bulkops.devstack.processes import ROOT
from bulkops.domain.model import ItemStatus, OperationStatus, OperationType, final_status
from bulkops.service.auth import create_tenant
from bulkops.settings import Settings
from bulkops.store.db import make_order_pool
from bulkops.store.selection import insert_ids
from bulkops.store.tables import BulkOperation, Order

log = logging.getLogger("bulkops.bench")
ORDERS, OPS = Order.__table__, BulkOperation.__table__


class BenchError(RuntimeError):
    pass


TYPES = {
    "cancel": OperationType.BULK_CANCEL,
    "refund": OperationType.BULK_REFUND,
    "update": OperationType.BULK_UPDATE,
    "export": OperationType.BULK_EXPORT,
}
PARAMETERS: dict[OperationType, dict[str, Any]] = {
    OperationType.BULK_CANCEL: {"reason": "bench"},
    OperationType.BULK_REFUND: {"reason": "bench"},
    OperationType.BULK_UPDATE: {"set": {"note": "bench"}, "add_tags": ["bench"]},
    OperationType.BULK_EXPORT: {"format": "jsonl"},
}
SEED_CHUNK = 50_000
# Every seeded order is one the operation succeeds on: cancel gets a PAID/PENDING mix, the rest PAID.
SEED_SQL = text("""
INSERT INTO orders (id, tenant_id, status, currency, total_cents, refunded_cents, paid_at, customer_email,
                    tags, metadata, version, created_at, updated_at)
SELECT gen_random_uuid(), :tenant, CASE WHEN :mixed AND g % 2 = 1 THEN 'PENDING' ELSE 'PAID' END, 'USD',
       1000 + (g % 50) * 10, 0, CASE WHEN :mixed AND g % 2 = 1 THEN NULL ELSE now() END,
       'c' || g || '@bench.example', '{}', '{}'::jsonb, 1, now() + g * interval '1 microsecond', now()
FROM generate_series(CAST(:lo AS int), CAST(:hi AS int)) AS g
""")


async def seed_tenant(sm: async_sessionmaker, prefix: str, n: int, op_type: OperationType) -> tuple[str, str]:
    """A fresh tenant with an API key and n orders (a few INSERT … SELECT, seconds for 100k)."""
    tenant = f"{prefix}-{uuid.uuid4().hex[:10]}"
    async with sm() as session, session.begin():
        key, _ = await create_tenant(session, tenant)
        mixed = op_type == OperationType.BULK_CANCEL
        for lo in range(1, n + 1, SEED_CHUNK):
            hi = min(lo + SEED_CHUNK - 1, n)
            await session.execute(SEED_SQL, {"tenant": tenant, "mixed": mixed, "lo": lo, "hi": hi})
    return tenant, key


def statuses_for(op_type: OperationType) -> list[str]:
    return ["PAID", "PENDING"] if op_type == OperationType.BULK_CANCEL else ["PAID"]


async def run_direct(
    sm: async_sessionmaker, settings: Settings, tenant: str, op_type: OperationType, lanes: int, name: str
) -> dict[str, Any]:
    """A baseline: the same per-order transaction in a plain loop of `lanes` lanes on a pool of that
    size, with a summary row so FKs hold. Its figures are prefixed with `name`."""
    op_id = uuid.uuid4()
    caller = f"bench-{name}-{op_id}"  # the row's workflow id: the per-order step's authority
    params = PARAMETERS[op_type]
    async with sm() as session, session.begin():
        await session.execute(
            insert(BulkOperation).values(
                id=op_id,
                lineage_id=op_id,
                tenant_id=tenant,
                operation_type=op_type.value,
                status=OperationStatus.PROCESSING.value,
                parameters=params,
                selection={"bench": "direct"},
                max_concurrency=lanes,
                workflow_id=caller,
                errors=[],
                initiated_by=f"bulkops bench ({name} baseline)",
                started_at=datetime.now(UTC),
            )
        )
    pool = make_order_pool(settings, size=lanes)
    await pool.open(wait=True)
    acts = OrderActivities(pool)

    ok = 0
    t0 = time.perf_counter()
    async with sm() as session:  # selecting the targets is part of the work, as in the workflow
        ids = (
            (
                await session.execute(
                    select(ORDERS.c.id)
                    .where(ORDERS.c.tenant_id == tenant, ORDERS.c.status.in_(statuses_for(op_type)))
                    .order_by(ORDERS.c.created_at, ORDERS.c.id)
                )
            )
            .scalars()
            .all()
        )
    async with sm() as session, session.begin():  # the snapshot: the step acts on targets only
        await insert_ids(session, op_id, list(ids))
    todo = iter(enumerate(ids, 1))

    async def lane() -> None:
        nonlocal ok
        for seq, order_id in todo:  # shared iterator: each lane takes the next order
            out = await acts.apply(
                ProcessOrderInput(
                    operation_id=op_id,
                    tenant_id=tenant,
                    operation_type=op_type,
                    order_id=order_id,
                    seq=seq,
                    parameters=params,
                ),
                caller,
            )
            ok += out.status == ItemStatus.SUCCEEDED

    try:
        await asyncio.gather(*(lane() for _ in range(min(lanes, len(ids)) or 1)))
        elapsed = time.perf_counter() - t0
    finally:
        await pool.close()
    failed = len(ids) - ok
    status = final_status(ok, failed)
    async with sm() as session, session.begin():
        await session.execute(
            update(BulkOperation)
            .where(BulkOperation.id == op_id)
            .values(
                status=status.value,
                total_count=len(ids),
                processed_count=len(ids),
                success_count=ok,
                failed_count=failed,
                completed_at=datetime.now(UTC),
            )
        )
    return {
        f"{name}_orders_per_s": round(len(ids) / elapsed, 1),
        f"{name}_orders": len(ids),
        f"{name}_s": round(elapsed, 3),
        f"{name}_success_count": ok,
        f"{name}_status": status.value,
        f"{name}_concurrency": lanes,
        f"{name}_operation_id": str(op_id),
    }


# --- what the bench reads back ---------------------------------------------------------------------


def p95_ms(samples: list[float]) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[math.ceil(0.95 * len(ordered)) - 1] * 1000, 2)


@dataclass
class Poll:
    """One kind of progress request and the latencies of those issued while the operation runs."""

    name: str
    call: Callable[[], Awaitable[None]]
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    async def once(self) -> None:
        started = time.perf_counter()
        try:
            await self.call()
            self.latencies.append(time.perf_counter() - started)
            log.debug("%s took %.0f ms", self.name, self.latencies[-1] * 1000)
        except Exception as exc:  # e.g. a query across a continue-as-new: counted, not fatal
            self.errors += 1
            log.debug("%s failed: %s", self.name, exc)


async def poll_in_turn(polls: list[Poll], done: asyncio.Event, period: float) -> None:
    """One request at a time, the kinds taking turns, at most one per `period`: the load on the
    workflow is that of one client polling at that rate, however many kinds are measured."""
    turn = 0
    while not done.is_set():
        started = time.perf_counter()
        await polls[turn % len(polls)].once()
        turn += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), max(0.0, period - (time.perf_counter() - started)))


async def wait_terminal(sm: async_sessionmaker, op_id: uuid.UUID, deadline: float) -> float:
    """The moment the summary row shows a terminal status (the API answers from that row then)."""
    while True:
        async with sm() as session:
            status = await session.scalar(select(OPS.c.status).where(OPS.c.id == op_id))
        now = time.perf_counter()
        if status and OperationStatus(status).terminal:
            return now
        if now > deadline:
            raise BenchError(f"operation {op_id} is still {status} at the bench's timeout")
        await asyncio.sleep(0.05)


def commit_id() -> str | None:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


async def history_per_run(client: Client, workflow_id: str) -> tuple[int, int]:
    """Walk the continue-as-new chain back from the latest run (no dependence on visibility lag)."""
    run_id: str | None = None
    runs, max_events = 0, 0
    while True:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        desc = await handle.describe()
        runs += 1
        max_events = max(max_events, desc.history_length)
        first = None
        async for event in client.get_workflow_handle(workflow_id, run_id=desc.run_id).fetch_history_events(
            page_size=1
        ):
            first = event
            break
        started = first.workflow_execution_started_event_attributes if first else None
        previous = started.continued_execution_run_id if started else ""
        if not previous:
            return runs, max_events
        run_id = previous
