"""Record the workflow histories that every test run replays (tests/workflows/test_replay.py).

    uv run python scripts/record_histories.py          # rewrites tests/workflows/histories/*.json

Runs a representative set of operations on its own throwaway embedded stack (PostgreSQL, Temporal dev
server) with the current workflow code, and writes each run's history as Temporal's JSON. Re-record
after a release has shipped (README, Releasing workflow changes): the files are what the code in
production has written, which every later change must still replay.

Each history is kept small (a few orders): what is replayed is the shape of the code's decisions,
and the whole set is a few hundred kB.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHistory

from bulkops.domain.model import operation_workflow_id
from bulkops.domain.people import Role
from bulkops.infra.temporal_client import connect
from bulkops.settings import Settings
from tests.harness import Harness, Stack, Tenant, embedded_stack, stack_settings
from tests.safety.keys import key, set_policy
from tests.support import FlakyOrders, SlowOrders
from tests.webhooks.receivers import receiver
from workflows.contracts import RETENTION_WORKFLOW, RetentionInput, coordinator_id

log = logging.getLogger("record_histories")

HISTORIES = Path(__file__).resolve().parent.parent / "tests" / "workflows" / "histories"
DELAY = 0.1  # seconds per order: long enough to pause or cancel an operation mid-way


async def run_histories(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of `workflow_id`, first run first (followed back through continue-as-new)."""
    runs: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        runs.insert(0, history)
        started = history.events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return runs
        run_id = started.continued_execution_run_id


class Recorder:
    def __init__(self, h: Harness, out: Path) -> None:
        self.h = h
        self.out = out
        self.names: list[str] = []

    async def save(self, name: str, workflow_id: str, *, closed: bool = True) -> None:
        """Every run of the workflow, once it has closed (its last steps follow the summary row)."""
        if closed:
            await asyncio.wait_for(self.h.client.get_workflow_handle(workflow_id).result(), 60)
        runs = await run_histories(self.h.client, workflow_id)
        for n, history in enumerate(runs, 1):
            stem = name if len(runs) == 1 else f"{name}.run{n}"
            (self.out / f"{stem}.json").write_text(history.to_json())
            self.names.append(stem)
            log.info("%s: %d events", stem, len(history.events))

    async def operation(
        self,
        name: str,
        t: Tenant,
        body: dict[str, Any],
        during: Callable[[str], Awaitable[None]] | None = None,
    ) -> dict[str, Any]:
        op = await self.h.start(t, body)
        if during is not None:
            await during(op["id"])
        final = await self.h.wait_end(t, op["id"])
        await self.save(name, operation_workflow_id(uuid.UUID(op["id"])))
        return final

    async def ids(self, t: Tenant, n: int, **over: Any) -> list[str]:
        return [str(i) for i in await self.h.seed(t, n, **over)]


async def record_all(r: Recorder) -> None:
    h = r.h
    a = await h.tenant("rec")
    await h.start_worker(SlowOrders(h.order_pool, delay=DELAY))

    async def pause_resume(op_id: str) -> None:
        await h.wait_for(a, op_id, lambda b: b["processed_count"] >= 2)
        assert (await a.post(f"/v1/bulk-operations/{op_id}/pause")).status_code == 200
        assert (await a.post(f"/v1/bulk-operations/{op_id}/resume")).status_code == 200

    cancel_ids = await r.ids(a, 6) + await r.ids(a, 2, status="SHIPPED")
    await r.operation(
        "cancel-ids-pause-resume",
        a,
        {"operation_type": "BULK_CANCEL", "order_ids": cancel_ids, "max_concurrency": 2},
        pause_resume,
    )

    update_ids = await r.ids(a, 5)
    update = await r.operation(
        "update-ids",
        a,
        {
            "operation_type": "BULK_UPDATE",
            "order_ids": update_ids,
            "parameters": {"set": {"note": "recorded"}, "add_tags": ["rec"]},
            "max_concurrency": 2,
        },
    )
    revert = await a.post(f"/v1/bulk-operations/{update['id']}/revert")
    assert revert.status_code == 202, revert.text
    await h.wait_end(a, revert.json()["id"])
    await r.save("update-revert", operation_workflow_id(uuid.UUID(revert.json()["id"])))

    async def cancel_mid_way(op_id: str) -> None:
        await h.wait_for(a, op_id, lambda b: b["processed_count"] >= 2)
        assert (await a.post(f"/v1/bulk-operations/{op_id}/cancel")).status_code == 200

    await r.operation(
        "cancel-control",
        a,
        {"operation_type": "BULK_CANCEL", "order_ids": await r.ids(a, 12), "max_concurrency": 1},
        cancel_mid_way,
    )
    await r.operation(
        "threshold-trip",
        a,
        {
            "operation_type": "BULK_CANCEL",
            "order_ids": await r.ids(a, 6, status="SHIPPED") + await r.ids(a, 2),
            "max_concurrency": 1,
            "failure_threshold": {"max_failure_ratio": 0.5, "min_processed": 3},
        },
    )
    start_at = datetime.now(UTC) + timedelta(seconds=3)
    await r.operation(
        "scheduled-start",
        a,
        {"operation_type": "BULK_CANCEL", "order_ids": await r.ids(a, 4), "start_at": start_at.isoformat()},
    )

    # By filter, each in a tenant of its own (a filter selects the tenant's orders by status).
    b = await h.tenant("rec")
    await r.ids(b, 5)
    await r.ids(b, 2, status="PENDING", paid_at=None)
    async with receiver("ok") as hook:
        await r.operation(
            "refund-filter-webhook",
            b,
            {
                "operation_type": "BULK_REFUND",
                "filter": {"statuses": ["PAID", "PENDING"]},
                "parameters": {"reason": "recorded", "amount_cents": 300},
                "notify_url": hook.url,
            },
        )
        assert hook.hits, "the completion webhook was not delivered"
    await r.operation(
        "export-filter",
        b,
        {
            "operation_type": "BULK_EXPORT",
            "filter": {"statuses": ["PARTIALLY_REFUNDED"]},
            "parameters": {"format": "csv"},
        },
    )

    # Approval: an operator asks, an approver (another person) decides.
    c = await h.tenant("rec")
    olga = await key(h, c, Role.OPERATOR, "olga")
    anna = await key(h, c, Role.APPROVER, "anna")
    await set_policy(c, approval_types=["BULK_REFUND"], approval_window_s=3600)

    async def approve(op_id: str) -> None:
        assert (await anna.post(f"/v1/bulk-operations/{op_id}/approve")).status_code == 200

    await r.operation(
        "approval-approved",
        olga,
        {"operation_type": "BULK_REFUND", "order_ids": await r.ids(c, 4), "parameters": {"reason": "rec"}},
        approve,
    )
    await r.save("tenant-coordinator", coordinator_id(a.id), closed=False)  # it lives on

    # Continue-as-new: the smallest run budget and window, so that a dozen orders take several runs.
    await h.stop_worker()
    h.configure(max_events_per_run=200)
    await h.start_worker()
    await r.operation(
        "continue-as-new",
        a,
        {
            "operation_type": "BULK_UPDATE",
            "order_ids": await r.ids(a, 40),
            "parameters": {"add_tags": ["can"]},
            "max_concurrency": 1,
        },
    )
    await h.stop_worker()
    h.configure(max_events_per_run=8_000, local_activities=True)
    await h.start_worker()
    await r.operation(
        "local-activities",
        a,
        {
            "operation_type": "BULK_CANCEL",
            "order_ids": await r.ids(a, 5) + await r.ids(a, 1, status="SHIPPED"),
        },
    )
    await h.stop_worker()
    h.configure(local_activities=False)

    # A transient fault outlasts the retry policy (RETRIES_EXHAUSTED), then a retry of the failures.
    failing = await h.seed(a, 2)
    await h.start_worker(FlakyOrders(h.order_pool, always_fail=set(failing)))
    flaky = await r.operation(
        "retries-exhausted",
        a,
        {"operation_type": "BULK_CANCEL", "order_ids": await r.ids(a, 3) + [str(i) for i in failing]},
    )
    await h.stop_worker()
    await h.start_worker()
    retry = await a.post(f"/v1/bulk-operations/{flaky['id']}/retry")
    assert retry.status_code == 202, retry.text
    await h.wait_end(a, retry.json()["id"])
    await r.save("retry-of-failed", operation_workflow_id(uuid.UUID(retry.json()["id"])))

    retention = await h.client.start_workflow(
        RETENTION_WORKFLOW,
        RetentionInput(batch_rows=h.settings.retention_batch_rows),
        id=f"retention-{uuid.uuid4().hex[:8]}",
        task_queue=h.settings.task_queue,
    )
    await retention.result()
    await r.save("retention", retention.id)
    await h.stop_worker()


async def record(stack: Stack, out: Path) -> list[str]:
    client = await connect(Settings(TEMPORAL_ADDRESS=stack.temporal.address))
    settings = stack_settings(
        stack,
        "record",
        BULKOPS_ACTIVITY_MAX_ATTEMPTS=2,
        BULKOPS_AUTH_CACHE_S=0,
        BULKOPS_PROGRESS_FRESH_S=0,
        BULKOPS_ORPHAN_SWEEP_S=0,
        BULKOPS_WORKER_METRICS_PORT=0,
        BULKOPS_WEBHOOK_ALLOW_PRIVATE=True,  # the receiver listens on loopback
    )
    async with Harness.open(stack, client, settings) as h:
        recorder = Recorder(h, out)
        await record_all(recorder)
    return recorder.names


def main(out: Path) -> None:
    tmp = out.with_name(out.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # The stack's migrations run their own event loop: the stack starts outside ours.
    with embedded_stack("bulkops-record-") as stack:
        names = asyncio.run(record(stack, tmp))
    # Only a complete set replaces the old one.
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    size = sum(p.stat().st_size for p in out.glob("*.json"))
    log.info("%d histories, %d kB in %s", len(names), size // 1024, out)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=HISTORIES, help="directory to (re)write")
    main(parser.parse_args().out)
