"""The worker's composition root: settings → engine → client → activity objects → Worker.

`python worker.py` and `bulkops worker` run the same thing (`main`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from importlib.metadata import version
from typing import Any

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Interceptor, PollerBehaviorSimpleMaximum, Replayer, Worker

from activities.audit import AuditActivities
from activities.fairness import FairnessActivities
from activities.operations import OperationActivities
from activities.orders import OrderActivities
from activities.retention import RetentionActivities
from activities.revert import RevertActivities
from activities.sweep import OrphanSweeper
from activities.webhooks import WebhookActivities
from bulkops.infra import aio
from bulkops.infra.logs import setup_logging
from bulkops.infra.metrics import MetricsInterceptor, start_metrics_server
from bulkops.infra.temporal_client import DATA_CONVERTER, connect
from bulkops.infra.temporal_tracing import worker_interceptors
from bulkops.infra.tracing import Telemetry
from bulkops.infra.webhook_http import webhook_client
from bulkops.service.starting import start_unconfirmed
from bulkops.settings import Settings
from bulkops.store.db import make_engine, make_order_pool, make_sessionmaker
from workflows.bulk_operation import BulkOperationWorkflow
from workflows.retention import RetentionWorkflow
from workflows.search_attributes import TENANT_ID
from workflows.tenant_coordinator import TenantCoordinatorWorkflow

log = logging.getLogger("bulkops.worker")

WORKFLOWS: Sequence[type] = (BulkOperationWorkflow, TenantCoordinatorWorkflow, RetentionWorkflow)


def replayer(workflows: Sequence[type] = WORKFLOWS) -> Replayer:
    """Replays recorded histories with what a worker registers (tests/workflows/test_recorded_histories.py): a
    change of workflow code that would break a running operation fails there, not in production."""
    return Replayer(workflows=list(workflows), data_converter=DATA_CONVERTER)


def worker_tuning(settings: Settings) -> dict[str, Any]:
    """Slots, polls and eager dispatch: shared with `bulkops bench --with-ceiling`'s empty worker."""
    return {
        "max_concurrent_activities": settings.activity_slots,
        "max_concurrent_local_activities": settings.activity_slots,
        # Eager dispatch halves the dev server's writes per order, but skips the task queue's fairness.
        "max_eager_activity_reservations_per_workflow_task": max(settings.eager_activities, 1),
        "disable_eager_activity_execution": settings.eager_activities == 0,
        # A poll per free slot: with fewer, a backlog drains no faster than a few polls per round trip.
        "activity_task_poller_behavior": PollerBehaviorSimpleMaximum(settings.activity_slots),
        "sticky_queue_schedule_to_start_timeout": timedelta(seconds=settings.worker_sticky_timeout_s),
    }


class _MainWorker(Worker):
    """The task queue's worker: its shutdown also drains the webhook deliveries' worker beside it, at
    the same time, so that together they stop within one graceful shutdown time."""

    beside: Worker | None = None

    async def shutdown(self) -> None:
        await asyncio.gather(super().shutdown(), *([self.beside.shutdown()] if self.beside else []))


@contextlib.asynccontextmanager
async def build_worker(
    settings: Settings,
    client: Client,
    *,
    order_activities: OrderActivities | None = None,
    workflows: Sequence[type] = WORKFLOWS,
    telemetry: Telemetry | None = None,
) -> AsyncIterator[Worker]:
    """Everything a worker needs, torn down in reverse. Tests pass their own `order_activities`, and
    a release's `workflows` (registered under the same names) to deploy it beside running operations.

    With `telemetry` on, the SQL and the webhook's HTTP are traced; the Temporal spans come from the
    client's tracing interceptor (`connect(settings, telemetry)`), which the workers inherit."""
    telemetry = telemetry or Telemetry()
    engine = make_engine(settings)
    telemetry.instrument_engine(engine)
    # Ids on spans and log records, inside the client's tracing interceptor and around the metrics'.
    sessionmaker = make_sessionmaker(engine)
    interceptors: list[Interceptor] = [
        *worker_interceptors(settings, telemetry),
        MetricsInterceptor(),
    ]
    # A worker runs workflows, activities, or both (the default). Split roles keep the light
    # workflow work (and so progress queries) off the event loop that runs the orders.
    role = settings.worker_role
    async with contextlib.AsyncExitStack() as stack:
        activities: list[Callable[..., Any]] = []
        beside: Worker | None = None
        if role in ("all", "activities"):
            http = await stack.enter_async_context(webhook_client(settings))
            telemetry.instrument_http(http)
            hooks = WebhookActivities(sessionmaker, settings, http)
            beside = await stack.enter_async_context(_webhook_worker(settings, client, hooks, interceptors))
            if order_activities is None:
                pool = make_order_pool(
                    settings, configure=telemetry.instrument_connection if telemetry.enabled else None
                )
                order_activities = OrderActivities(await stack.enter_async_context(pool))
            ops = OperationActivities(sessionmaker)
            fairness = FairnessActivities(client, settings)
            audit = AuditActivities(sessionmaker)
            revert = RevertActivities(order_activities.pool)
            if settings.orphan_sweep_s > 0:
                unconfirmed = functools.partial(start_unconfirmed, sessionmaker, client, settings)
                sweeper = OrphanSweeper(sessionmaker, client, settings, start_unstarted=unconfirmed)
                sweep = asyncio.create_task(sweeper.run())
                stack.callback(sweep.cancel)
            activities = [
                order_activities.process_order,
                ops.snapshot_selection,
                ops.fetch_targets,
                ops.set_status,
                ops.finalize_operation,
                ops.record_failure,
                fairness.request_slot,
                fairness.closed_slot_holders,
                audit.record_event,
                revert.revert_order,
                RetentionActivities(sessionmaker, settings).purge_expired,
            ]
        worker = _MainWorker(
            client,
            task_queue=settings.task_queue,
            workflows=list(workflows) if role in ("all", "workflows") else [],
            activities=activities,
            **worker_tuning(settings),
            # An explicit build id spares the SDK hashing every loaded module at start-up (seconds).
            build_id=f"bulkops-{version('bulkops')}",
            graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_s),
            interceptors=interceptors,
        )
        worker.beside = beside
        try:
            yield worker
        finally:
            await engine.dispose()


@contextlib.asynccontextmanager
async def _webhook_worker(
    settings: Settings, client: Client, hooks: WebhookActivities, interceptors: list[Interceptor]
) -> AsyncIterator[Worker]:
    """Deliveries poll their own task queue with their own slots, beside the main worker: a receiver
    that never answers can hold a webhook slot, never one that processes orders."""
    worker = Worker(
        client,
        task_queue=settings.webhook_task_queue,
        activities=[hooks.deliver_webhook],
        max_concurrent_activities=settings.webhook_max_concurrent,
        interceptors=interceptors,
        build_id=f"bulkops-{version('bulkops')}",
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_s),
    )
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        await worker.shutdown()
        await asyncio.gather(task, return_exceptions=True)


def sdk_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime that serves the SDK's own metrics on BULKOPS_WORKER_SDK_METRICS_PORT (None:
    off, or the port is taken, which is logged, not fatal, like the worker's own metrics port)."""
    if not settings.worker_sdk_metrics_port:
        return None
    address = f"{settings.worker_metrics_host}:{settings.worker_sdk_metrics_port}"
    # Seconds and `_total` counters, like the rest of the Prometheus world (and bulkops' own metrics).
    config = PrometheusConfig(bind_address=address, counters_total_suffix=True, durations_as_seconds=True)
    try:
        runtime = Runtime(telemetry=TelemetryConfig(metrics=config))
    except ValueError as exc:
        log.warning("Temporal SDK metrics not served on %s: %s", address, exc)
        return None
    log.info("Temporal SDK metrics on http://%s/metrics", address)
    return runtime


async def run_worker(settings: Settings) -> None:
    """Poll until SIGTERM or SIGINT, then drain (README, Releasing workflow changes)."""
    telemetry = Telemetry.from_environment("bulkops-worker")
    client = await connect(settings, telemetry, sdk_runtime(settings))
    start_metrics_server(settings.worker_metrics_port, settings.worker_metrics_host)
    try:
        async with build_worker(settings, client, telemetry=telemetry) as worker:
            _drain_on_signals(worker, settings.worker_shutdown_s)
            log.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
            await worker.run()
    finally:
        telemetry.shutdown()
    log.info("worker stopped")


def _drain_on_signals(worker: Worker, grace_s: float) -> None:
    """The first SIGTERM or SIGINT starts a graceful shutdown: no new tasks are polled, the orders
    and deliveries in hand get `grace_s` to finish, and what is still running is then cancelled (its
    transaction rolls back) and reported to Temporal as failed, so it is retried at once elsewhere.
    Python's default for SIGTERM would end the process on the spot, leaving each of those attempts
    to its start-to-close timeout."""
    loop = asyncio.get_running_loop()
    draining: list[asyncio.Task[None]] = []

    def drain(sig: signal.Signals) -> None:
        if not draining:
            log.info("%s: draining the worker (up to %.0f s)", sig.name, grace_s)
            draining.append(loop.create_task(worker.shutdown()))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, drain, sig)


def setup_worker_logging(settings: Settings) -> None:
    setup_logging(settings, tenant_attribute=TENANT_ID.name)


def main() -> None:
    settings = Settings()
    setup_worker_logging(settings)
    with contextlib.suppress(KeyboardInterrupt):  # (a Ctrl-C before the worker is polling)
        aio.run(run_worker(settings))
