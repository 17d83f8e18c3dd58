"""`bulkops bench` reports what happened, correctly: counts, outcomes, history and memory.

Never a speed: the numbers are checked against Postgres and Temporal, not against a target.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
from temporalio.client import Client

from bulkops.bench.command import run_bench
from bulkops.bench.cpu import postmaster_pid
from bulkops.bench.operation import BenchOptions, Target
from bulkops.bench.stack import find_worker_pids
from bulkops.bench.workload import p95_ms
from bulkops.devstack.postgres import port_open
from bulkops.domain.model import OperationType
from bulkops.domain.views import Progress
from bulkops.settings import Settings
from bulkops.store.tables import BulkOperation, BulkOperationItem, Order
from tests.harness import Harness, Stack, stack_settings
from workflows.bulk_operation import BulkOperationWorkflow
from workflows.contracts import BulkOperationInput

ITEMS, OPS, ORDERS = BulkOperationItem.__table__, BulkOperation.__table__, Order.__table__
ROOT = Path(__file__).resolve().parent.parent
N = 60


@pytest.fixture
async def small_runs(stack: Stack, client: Client) -> AsyncIterator[Harness]:
    """A harness whose operations continue as new every ~200 events, so the bench walks several runs
    (regular activities: three events per order, so that 60 orders certainly need more than one run)."""
    settings = stack_settings(stack, BULKOPS_MAX_EVENTS_PER_RUN=200, BULKOPS_LOCAL_ACTIVITIES=False)
    async with Harness.open(stack, client, settings) as h:
        yield h


async def test_bench_json_matches_postgres_and_temporal(small_runs: Harness) -> None:
    h = small_runs
    await h.start_worker()
    assert h.stack.temporal.pid is not None and h.stack.postgres is not None
    parts = {"dev_server": [h.stack.temporal.pid], "postgres": [postmaster_pid(h.stack.postgres.pgdata)]}
    target = Target(h.settings, h.client, h.http, worker_pids=[os.getpid()], processes=parts)  # type: ignore[arg-type]
    out = await run_bench(
        BenchOptions(orders=N, op_type=OperationType.BULK_CANCEL, max_concurrency=50, with_ceiling=True),
        target,
    )

    assert out["orders"] == N and out["type"] == "BULK_CANCEL"
    assert out["status"] == "COMPLETED"
    assert (out["total_count"], out["success_count"], out["failed_count"], out["items_succeeded"]) == (
        N,
        N,
        0,
        N,
    )
    op_id = uuid.UUID(out["operation_id"])
    assert await h.count(ITEMS, ITEMS.c.operation_id == op_id, ITEMS.c.status == "SUCCEEDED") == N
    tenant = out["tenant_id"]
    assert await h.count(ORDERS, ORDERS.c.tenant_id == tenant) == N
    assert await h.count(ORDERS, ORDERS.c.tenant_id == tenant, ORDERS.c.status == "CANCELLED") == N

    # The history walk found every run of the continue-as-new chain, each bounded.
    handle = h.client.get_workflow_handle_for(BulkOperationWorkflow.run, f"bulk-op-{op_id}")
    final = await handle.result()
    assert isinstance(final, Progress)
    assert out["runs"] >= 2
    wf_id = f"bulk-op-{op_id}"
    for _ in range(100):  # visibility is eventually consistent
        listed = [e async for e in h.client.list_workflows(f"WorkflowId='{wf_id}'")]
        if len(listed) >= out["runs"]:
            break
        await asyncio.sleep(0.1)
    assert len(listed) == out["runs"]
    assert out["max_history_events_per_run"] == max(e.history_length for e in listed)
    assert 0 < out["max_history_events_per_run"] <= 10_000
    assert out["max_history_events_per_run"] >= final.max_run_history

    # The baseline did the same work on its own tenant, with exactly one outcome per order.
    direct_id = uuid.UUID(out["direct_operation_id"])
    assert out["direct_status"] == "COMPLETED" and out["direct_success_count"] == N
    assert 1 <= out["direct_concurrency"] <= 50
    assert await h.count(ITEMS, ITEMS.c.operation_id == direct_id, ITEMS.c.status == "SUCCEEDED") == N
    assert (
        await h.count(OPS, OPS.c.id == direct_id, OPS.c.status == "COMPLETED", OPS.c.success_count == N) == 1
    )

    assert out["temporal_orders_per_s"] > 0 and out["direct_orders_per_s"] > 0
    assert out["ratio"] == round(out["temporal_orders_per_s"] / out["direct_orders_per_s"], 3)
    # The one-lane baseline: every order of its own tenant, one after another.
    seq_id = uuid.UUID(out["sequential_operation_id"])
    assert (out["sequential_concurrency"], out["sequential_orders"], out["sequential_success_count"]) == (
        1,
        N,
        N,
    )
    assert await h.count(ITEMS, ITEMS.c.operation_id == seq_id, ITEMS.c.status == "SUCCEEDED") == N
    assert out["sequential_orders_per_s"] > 0
    # The ceiling ran the same window of empty activities on the same Temporal, in the same invocation.
    ceiling = out["ceiling"]
    assert (ceiling["items"], ceiling["window"]) == (N, 50)
    assert out["ceiling_orders_per_s"] == ceiling["empty_activities_per_s"] > 0
    assert out["ratio_to_ceiling"] == round(out["temporal_orders_per_s"] / out["ceiling_orders_per_s"], 3)
    assert ceiling["cpu_ms_per_item"]["dev_server"] > 0 and ceiling["cpu_ms_per_item"]["worker"] > 0
    # CPU per order for every part it was given; the API runs in this process here, so it has no figure.
    cpu = out["cpu_ms_per_order"]
    assert all(cpu[p] > 0 for p in ("dev_server", "postgres", "worker", "bench")) and cpu["api"] is None
    assert cpu["total"] == pytest.approx(
        sum(cpu[p] for p in ("dev_server", "postgres", "worker", "bench")), abs=0.05
    )
    assert out["worker_peak_rss_mb"] > 0
    assert out["progress_query_samples"] >= 1 and out["progress_query_p95_ms"] > 0
    assert out["api_get_samples"] >= 1 and out["api_get_p95_ms"] > 0
    json.dumps(out)  # one JSON line: everything serializable


EFFECTS = {  # what every order of the bench tenant looks like afterwards
    OperationType.BULK_REFUND: ORDERS.c.status == "REFUNDED",
    OperationType.BULK_UPDATE: ORDERS.c.note == "bench",
    OperationType.BULK_EXPORT: ORDERS.c.status == "PAID",
}


@pytest.mark.parametrize("op_type", list(EFFECTS))
async def test_bench_other_types_without_baseline(harness: Harness, op_type: OperationType) -> None:
    await harness.start_worker()
    target = Target(harness.settings, harness.client, harness.http, worker_pids=[])
    out = await run_bench(BenchOptions(orders=20, op_type=op_type, skip_direct=True), target)
    assert (out["type"], out["status"], out["success_count"], out["items_succeeded"]) == (
        op_type.value,
        "COMPLETED",
        20,
        20,
    )
    assert out["direct_orders_per_s"] is None and out["ratio"] is None
    assert (
        out["sequential_orders_per_s"] is None and out["ceiling"] is None and out["ratio_to_ceiling"] is None
    )
    assert out["worker_peak_rss_mb"] is None  # nothing watched, nothing invented
    tenant = ORDERS.c.tenant_id == out["tenant_id"]
    assert await harness.count(ORDERS, tenant, EFFECTS[op_type]) == await harness.count(ORDERS, tenant) == 20


def test_p95() -> None:
    assert p95_ms([]) is None
    assert p95_ms([i / 1000 for i in range(1, 101)]) == 95.0
    assert p95_ms([0.5]) == 500.0


def test_finds_worker_processes() -> None:
    ours = Settings(TEMPORAL_ADDRESS="127.0.0.1:7777", BULKOPS_TASK_QUEUE="q-bench")
    env = {**os.environ, "TEMPORAL_ADDRESS": "localhost:7777", "BULKOPS_TASK_QUEUE": "q-bench"}
    sleep = [sys.executable, "-c", "import time; time.sleep(30)", "worker.py"]
    mine = subprocess.Popen(sleep, env=env)
    other = subprocess.Popen(sleep, env={**env, "BULKOPS_TASK_QUEUE": "someone-else"})
    try:
        deadline = time.monotonic() + 10
        while mine.pid not in find_worker_pids(ours):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert other.pid not in find_worker_pids(ours)
    finally:
        for proc in (mine, other):
            proc.kill()
            proc.wait()


def test_defaults_for_bench_input() -> None:
    # The bench relies on the workflow continuing as new below Temporal's limit by default.
    assert BulkOperationInput.model_fields["max_events_per_run"].default <= 10_000


# --- the real command on its own embedded stack (a minute on a busy 2-core box) ----------------------


def _bench_proc(orders: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bulkops.cli", "bench", "--embedded", "--orders", str(orders)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stack_of(stderr: str) -> tuple[Path, int, int, int]:
    m = re.search(
        r"embedded stack in (\S+): postgres :(\d+), temporal [\d.]+:(\d+), .* worker pid (\d+)", stderr
    )
    assert m, stderr
    return Path(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4))


def _assert_cleaned(root: Path, pg_port: int, temporal_port: int, worker_pid: int) -> None:
    assert not root.exists()
    assert not port_open(pg_port) and not port_open(temporal_port)
    assert not psutil.pid_exists(worker_pid) or psutil.Process(worker_pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
def test_embedded_command_prints_one_json_line_and_cleans_up() -> None:
    proc = _bench_proc(60)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    lines = stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert out["orders"] == 60 and out["status"] == "COMPLETED" and out["success_count"] == 60
    assert out["direct_success_count"] == 60 and out["embedded"] is True
    assert 0 < out["max_history_events_per_run"] <= 10_000 and out["worker_peak_rss_mb"] > 0
    _assert_cleaned(*_stack_of(stderr))


@pytest.mark.slow
def test_embedded_command_cleans_up_when_terminated() -> None:
    proc = _bench_proc(20_000)
    assert proc.stderr is not None
    seen = ""
    for line in proc.stderr:  # wait until the stack is up and the bench is seeding or running
        seen += line
        if "seeded" in line:
            break
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode != 0
    _assert_cleaned(*_stack_of(seen + rest))
