"""Prometheus metrics: one registry per process, fed by the API and by the worker's activities.

The API counts operations it starts and reports the operations not yet ended (from Postgres, at
scrape time, so every API replica agrees). The worker counts orders processed, activity durations
and operations ended through an activity interceptor, so the activities themselves stay free of
metrics code; it serves them on its own port (`BULKOPS_WORKER_METRICS_PORT`).
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from activities.contracts import (
    FinalizeInput,
    MetricLabels,
    OrderOutcome,
    ProcessOrderInput,
    RecordFailureInput,
)
from bulkops.domain.model import OPEN_STATUSES, TERMINAL_STATUSES, ItemStatus, OperationType
from bulkops.store.tables import OPERATIONS

log = logging.getLogger(__name__)

OPERATIONS_STARTED = Counter(
    "bulkops_operations_started", "Bulk operations accepted and started", ["operation_type"]
)
OPERATIONS_ENDED = Counter(
    "bulkops_operations_ended",
    "Bulk operations that reached a terminal status",
    ["operation_type", "status"],
)
ORDERS_PROCESSED = Counter(
    "bulkops_orders_processed",
    "Per-order outcomes recorded",
    ["operation_type", "outcome", "error_code"],
)
ACTIVITY_DURATION = Histogram(
    "bulkops_activity_duration_seconds",
    "Wall time of one activity attempt",
    ["activity", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
OPERATIONS_RUNNING = Gauge(
    "bulkops_operations_running",
    "Bulk operations not yet ended (waiting, PROCESSING or PAUSED)",
    ["operation_type", "status"],
)
OPERATIONS_IDLE = Gauge(
    "bulkops_operations_idle_seconds",
    "Longest time an open operation has gone without a change to its row: a status change, or a "
    "checkpoint of its counters (one per page of targets, BulkOperationInput.page_size orders)",
    ["operation_type", "status"],
)
RUNNING_STATUSES = tuple(sorted(s.value for s in OPEN_STATUSES))


def record_started(operation_type: str) -> None:
    OPERATIONS_STARTED.labels(operation_type).inc()


async def refresh_running(sessionmaker: async_sessionmaker) -> None:
    """Set the running and idle gauges from Postgres: every combination is reported, zeros included."""
    # A scheduled operation's row last changed when it was created, but it waits for its start_at.
    changed = func.greatest(OPERATIONS.c.created_at, OPERATIONS.c.start_at, OPERATIONS.c.progress_at)
    idle = func.greatest(func.max(func.extract("epoch", func.now() - changed)), 0)
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(OPERATIONS.c.operation_type, OPERATIONS.c.status, func.count(), idle)
                .where(OPERATIONS.c.status.in_(RUNNING_STATUSES))
                .group_by(OPERATIONS.c.operation_type, OPERATIONS.c.status)
            )
        ).all()
    counts = {(t, s): (n, float(i)) for t, s, n, i in rows}
    for op_type in OperationType:
        for status in RUNNING_STATUSES:
            n, i = counts.get((op_type.value, status), (0, 0.0))
            OPERATIONS_RUNNING.labels(op_type.value, status).set(n)
            OPERATIONS_IDLE.labels(op_type.value, status).set(i)


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# --- worker side -------------------------------------------------------------------------------------


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> Any:  # scraped from other hosts
    """Serve /metrics on the worker's own port, in a daemon thread; 0 turns it off.

    A port in use is logged, not fatal: metrics are not worth a worker that does not start. Returns the
    server (to `shutdown()`), or None.
    """
    if not port:
        return None
    try:
        server, _thread = start_http_server(port, addr=addr)
    except OSError as exc:
        log.warning("worker metrics not served: port %s: %s", port, exc)
        return None
    log.info("worker metrics on http://%s:%s/metrics", addr, port)
    return server


class _ActivityMetrics(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        name = activity.info().activity_type
        arg = input.args[0] if input.args else None
        started = time.perf_counter()
        try:
            result = await self.next.execute_activity(input)
        except BaseException as exc:
            _duration(name, "error").observe(time.perf_counter() - started)
            if isinstance(exc, Exception):
                activity.logger.warning(
                    "activity %s failed (attempt %s) for %s: %s",
                    name,
                    activity.info().attempt,
                    _context(arg),
                    exc,
                )
            raise
        _duration(name, "ok").observe(time.perf_counter() - started)
        _count(arg, result)
        return result


def _count(arg: Any, result: Any) -> None:
    if isinstance(arg, ProcessOrderInput) and isinstance(result, OrderOutcome):
        _count_outcome(arg.operation_type.value, result)
        if result.status != ItemStatus.SUCCEEDED:
            activity.logger.debug(
                "operation %s tenant %s order %s failed: %s",
                arg.operation_id,
                arg.tenant_id,
                arg.order_id,
                result.error_code,
            )
    elif isinstance(arg, RecordFailureInput) and isinstance(result, OrderOutcome):
        _count_outcome(_labels(arg)[0], result)
    elif isinstance(arg, FinalizeInput) and arg.status in TERMINAL_STATUSES:
        op_type, tenant = _labels(arg)
        OPERATIONS_ENDED.labels(op_type, arg.status.value).inc()
        activity.logger.info(
            "operation %s tenant %s (%s) ended %s: %s processed, %s succeeded, %s failed",
            arg.operation_id,
            tenant,
            op_type,
            arg.status.value,
            arg.processed_count,
            arg.success_count,
            arg.failed_count,
            extra={"operation_id": str(arg.operation_id), "tenant_id": tenant},
        )


# Children looked up once per label set, not per order (`labels()` validates and locks each time).
@functools.cache
def _duration(activity_name: str, outcome: str) -> Any:
    return ACTIVITY_DURATION.labels(activity_name, outcome)


@functools.cache
def _processed(operation_type: str, outcome: str, code: str) -> Any:
    return ORDERS_PROCESSED.labels(operation_type, outcome, code)


def _labels(arg: MetricLabels) -> tuple[str, str]:
    """The operation's type and tenant, as the workflow passed them (absent from inputs scheduled by an
    older workflow version)."""
    return (arg.operation_type.value if arg.operation_type else "UNKNOWN", arg.tenant_id or "?")


def _count_outcome(operation_type: str, outcome: OrderOutcome) -> None:
    code = outcome.error_code.value if outcome.error_code else ""
    _processed(operation_type, outcome.status.value, code).inc()


def _context(arg: Any) -> str:
    op = getattr(arg, "operation_id", None)
    tenant = getattr(arg, "tenant_id", None)
    order = getattr(arg, "order_id", None)
    parts = [
        f"operation {op}" if op else "",
        f"tenant {tenant}" if tenant else "",
        f"order {order}" if order else "",
    ]
    return " ".join(p for p in parts if p) or "-"


class MetricsInterceptor(Interceptor):
    """Worker interceptor: timing and outcome counters around every activity attempt."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityMetrics(next)
