"""One soak: start the stack, set up the tenants, run the traffic and the readers while the seed's
faults land, let everything settle, then check the books and print one JSON line."""

from __future__ import annotations

import asyncio
import logging
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from bulkops.chaos.book import Book
from bulkops.chaos.client import Gateway, Journal
from bulkops.chaos.faults import Fault, fault_schedule
from bulkops.chaos.invariants import check_all
from bulkops.chaos.readers import ReaderLog, follow, poll
from bulkops.chaos.receiver import webhook_receiver
from bulkops.chaos.stack import ChaosStack, chaos_stack
from bulkops.chaos.traffic import ChaosTenant, Traffic, make_tenants
from bulkops.infra import aio
from bulkops.infra.temporal_client import connect
from bulkops.store.db import make_engine, make_sessionmaker
from bulkops.store.tables import NOT_TERMINAL, OPERATIONS

log = logging.getLogger(__name__)
MAX_STREAMS = 3  # event streams followed at once


@dataclass(frozen=True)
class SoakOptions:
    seed: int = 1
    duration_s: float = 600
    every_s: float = 20  # about one fault this often
    tenants: int = 5
    orders_per_tenant: int = 200
    settle_s: float = 180  # every operation must end within this after the last fault
    max_operations: int = 400
    keep: bool = False  # keep the stack's files (logs, databases) for a post-mortem


async def _follow_some(
    gw: Gateway,
    book: Book,
    tenants: list[ChaosTenant],
    readers: ReaderLog,
    stop: asyncio.Event,
    rng: random.Random,
) -> None:
    followed: set[str] = set()
    running: set[asyncio.Task[None]] = set()
    while not stop.is_set():
        candidates = [op for op in book.open() if op.id not in followed]
        if candidates and len(running) < MAX_STREAMS:
            op = rng.choice(candidates)
            followed.add(op.id)
            task = asyncio.create_task(follow(gw, op, tenants[op.tenant].operator_key, readers, stop))
            running.add(task)
            task.add_done_callback(running.discard)
        await asyncio.sleep(1.0)
    # A stream waits for its next event; once the soak is over, none is awaited for long.
    if running:
        await asyncio.wait(running, timeout=5)
    for task in running:
        task.cancel()


async def _inject_all(stack: ChaosStack, schedule: list[Fault], t0: float, counts: Counter[str]) -> float:
    """Each fault at its time; returns when the last one ended (monotonic)."""
    last_end = time.monotonic()
    for fault in schedule:
        await asyncio.sleep(max(0.0, t0 + fault.at_s - time.monotonic()))
        await asyncio.to_thread(stack.inject, fault)
        counts[fault.kind.value] += 1
        last_end = time.monotonic()
    return last_end


async def run_soak(opts: SoakOptions, stack: ChaosStack) -> dict[str, Any]:
    schedule = fault_schedule(opts.seed, opts.duration_s, opts.every_s)
    log.info("seed %s: %d faults\n%s", opts.seed, len(schedule), "\n".join(f.describe() for f in schedule))
    started = time.monotonic()
    engine = make_engine(stack.settings, pool_size=3)
    sessionmaker = make_sessionmaker(engine)
    client = await connect(stack.settings)
    journal, book, readers = Journal(), Book(), ReaderLog()
    gw = Gateway(stack.api_urls, journal)
    try:
        async with webhook_receiver(opts.seed) as receiver:
            tenants, before = await make_tenants(
                sessionmaker, gw, opts.tenants, opts.orders_per_tenant, opts.seed
            )
            rng = random.Random(opts.seed)
            traffic = Traffic(gw, tenants, book, receiver.url, rng)
            stop_traffic, stop_readers = asyncio.Event(), asyncio.Event()
            background = [
                asyncio.create_task(traffic.run(stop_traffic, opts.max_operations)),
                asyncio.create_task(
                    poll(gw, book, lambda op: tenants[op.tenant].operator_key, readers, stop_readers)
                ),
                asyncio.create_task(_follow_some(gw, book, tenants, readers, stop_readers, rng)),
            ]
            t0 = time.monotonic()
            counts: Counter[str] = Counter()
            last_fault_end = await _inject_all(stack, schedule, t0, counts)
            await asyncio.sleep(max(0.0, t0 + opts.duration_s - time.monotonic()))
            stop_traffic.set()
            # Every request is bounded (timeouts, bounded repeats); this bounds the last one too.
            await asyncio.wait([background[0]], timeout=300)
            log.info("traffic stopped: %d operations; settling", len(book.operations))
            # Settle: approve what waits, resume what is paused, until everything has ended.
            settled_in: float | None = None
            while time.monotonic() < last_fault_end + opts.settle_s:
                await traffic.settle()
                # Not only what was acknowledged: a create answered 503 may have left a row that the
                # worker's sweep starts (an unconfirmed start), and it must end too.
                if not book.open() and not await _unended(sessionmaker, tenants):
                    settled_in = round(time.monotonic() - last_fault_end, 1)
                    break
                await asyncio.sleep(1.0)
            await asyncio.sleep(3.0)  # the last webhooks and stream events
            stop_readers.set()
            await asyncio.gather(*background[1:], return_exceptions=True)
            log.info("settled in %s s; checking the books", settled_in)
            verdicts = await check_all(
                sessionmaker, client, book, before, tenants, receiver, readers, journal
            )
            exited = stack.check_alive()
            webhook_refusals = receiver.refused
    finally:
        await gw.aclose()
        await engine.dispose()
    reads = readers.read_latencies_s
    p95 = statistics.quantiles(reads, n=20)[18] * 1000 if len(reads) >= 20 else None
    violations = sum(len(v.violations) for v in verdicts.values()) + len(exited)
    statuses = Counter(op.status for op in book.operations.values())
    types = Counter(op.operation_type for op in book.operations.values())
    return {
        "seed": opts.seed,
        "duration_s": opts.duration_s,
        "wall_s": round(time.monotonic() - started, 1),
        "faults": dict(sorted(counts.items())),
        "faults_total": sum(counts.values()),
        "operations": len(book.operations),
        "operations_by_type": dict(sorted(types.items())),
        "operations_by_status": dict(sorted(statuses.items())),
        "orders": sum(op.total_count for op in book.operations.values()),
        "requests": len(journal.answers),
        "answers_by_status": dict(sorted(Counter(str(a.status) for a in journal.answers).items())),
        "controls_acknowledged": dict(
            sorted(Counter(a for (_, a), n in book.acknowledged.items() for _ in range(n)).items())
        ),
        "controls_unanswered": len(book.unknown),
        "webhook_refusals": webhook_refusals,
        "streams_completed": readers.streams_completed,
        "stream_reconnects": readers.stream_reconnects,
        "settled_within_s": settled_in,
        "settle_limit_s": opts.settle_s,
        "read_p95_ms": round(p95, 1) if p95 is not None else None,
        "processes_exited": exited,
        "invariants": {name: v.summary() for name, v in verdicts.items()},
        "violations": violations,
    }


def soak_and_report(opts: SoakOptions) -> tuple[dict[str, Any], int]:
    """The report and the exit status: 1 on any violation."""
    # The stack starts outside the event loop: its migrations run their own.
    with chaos_stack(keep=opts.keep) as stack:
        report = aio.run(run_soak(opts, stack))
    return report, 1 if report["violations"] else 0


async def _unended(sessionmaker: async_sessionmaker, tenants: list[ChaosTenant]) -> int:
    """How many of the soak's tenants' operations have not ended (the database says)."""
    async with sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OPERATIONS)
                .where(OPERATIONS.c.tenant_id.in_([t.id for t in tenants]), NOT_TERMINAL)
            )
            or 0
        )
