"""Replaying a create (same Idempotency-Key, same body) of an operation that ended — COMPLETED,
FAILED, CANCELLED or terminated from outside — returns it and starts nothing; and a start that fails
removes the row only when the workflow is known not to exist."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.client import WorkflowExecutionStatus

from tests.harness import ITEMS, REFUNDS, Harness, Tenant
from tests.support import SlowOrders


async def created(h: Harness, a: Tenant, body: dict[str, Any], key: str) -> dict[str, Any]:
    r = await a.post("/v1/bulk-operations", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 202, r.text
    return r.json()  # type: ignore[no-any-return]


async def books(h: Harness, op: dict[str, Any]) -> tuple[Any, ...]:
    """What a second run would change: the workflow's latest run, its outcome and refund rows."""
    desc = await h.client.get_workflow_handle(op["workflow_id"]).describe()
    op_id = uuid.UUID(op["id"])
    items = await h.count(ITEMS, ITEMS.c.operation_id == op_id)
    refunds = await h.count(REFUNDS, REFUNDS.c.operation_id == op_id)
    return desc.run_id, desc.status, items, refunds


async def test_replaying_a_create_after_it_ended_starts_nothing(harness: Harness) -> None:
    h = harness
    h.configure(activity_timeout_s=2.0, orphan_sweep_s=0.5)
    await h.start_worker(SlowOrders(h.order_pool, delay=0.05))
    a = await h.tenant()

    def refund(ids: list[uuid.UUID]) -> dict[str, Any]:
        return {"operation_type": "BULK_REFUND", "order_ids": [str(i) for i in ids], "max_concurrency": 2}

    bodies = {
        "completed": refund(await h.seed(a, 4)),
        "failed": refund([uuid.uuid4() for _ in range(3)]),
        "cancelled": refund(await h.seed(a, 200)),
        "terminated": refund(await h.seed(a, 200)),
    }
    keys = {name: f"{name}-{uuid.uuid4()}" for name in bodies}
    ops = {name: await created(h, a, body, keys[name]) for name, body in bodies.items()}
    await h.wait_for(a, ops["cancelled"]["id"], lambda b: b["processed_count"] >= 5)
    assert (await a.post(f"/v1/bulk-operations/{ops['cancelled']['id']}/cancel")).status_code == 200
    await h.wait_for(a, ops["terminated"]["id"], lambda b: b["processed_count"] >= 5)
    await h.client.get_workflow_handle(ops["terminated"]["workflow_id"]).terminate("from outside")
    for name in ("completed", "failed", "cancelled"):
        ops[name] = await h.wait_end(a, ops[name]["id"])
    assert [ops[n]["status"] for n in ("completed", "failed", "cancelled")] == [
        "COMPLETED",
        "FAILED",
        "CANCELLED",
    ]

    async def replay_all(in_flight: str | None = None) -> None:
        before = {name: await books(h, op) for name, op in ops.items()}
        for name, body in bodies.items():
            r = await a.post("/v1/bulk-operations", json=body, headers={"Idempotency-Key": keys[name]})
            assert (r.status_code, r.json()["id"]) == (200, ops[name]["id"]), (name, r.text)
        await asyncio.sleep(1.5)  # a run started by mistake would have done something by now
        after = {name: await books(h, op) for name, op in ops.items()}
        if in_flight:  # attempts running when it was terminated may still commit their outcomes
            before[in_flight], after[in_flight] = before[in_flight][:2], after[in_flight][:2]
        assert after == before
        assert all(b[1] != WorkflowExecutionStatus.RUNNING for b in after.values()), after

    # What a replay answers (200 + BulkOperation) is what the OpenAPI document declares.
    declared = h.app.openapi()["paths"]["/v1/bulk-operations"]["post"]["responses"]["200"]
    assert "#/components/schemas/BulkOperationRead" in str(declared)
    # At once (the terminated one's row has not been closed yet), and once the sweep closed it.
    await replay_all(in_flight="terminated")
    ops["terminated"] = await h.wait_end(a, ops["terminated"]["id"], timeout=30)
    assert ops["terminated"]["failure_reason"] == "WORKFLOW_TERMINATED"
    await replay_all()


class StartFails:
    """The real client, except that `start_workflow` fails: before the server saw it, or after it
    accepted it (a client timeout: the ambiguous case)."""

    def __init__(self, client: Any, *, after_accepting: bool) -> None:
        self.client, self.after_accepting = client, after_accepting

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def start_workflow(self, *args: Any, **kwargs: Any) -> Any:
        if self.after_accepting:
            await self.client.start_workflow(*args, **kwargs)
        raise TimeoutError("deadline exceeded")


async def test_a_failed_start_forgets_the_row_only_when_no_workflow_exists(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant()
    service = h.app.state.services.operations
    real = service.client
    ids = await h.seed(a, 3)
    body = {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids]}
    try:
        service.client = StartFails(real, after_accepting=False)
        r = await a.post("/v1/bulk-operations", json=body, headers={"Idempotency-Key": "never-started"})
        assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
        assert "Retry-After" in r.headers
        assert await h.scalar("SELECT count(*) FROM bulk_operations WHERE tenant_id = :t", t=a.id) == 0

        service.client = StartFails(real, after_accepting=True)
        r = await a.post("/v1/bulk-operations", json=body, headers={"Idempotency-Key": "started-anyway"})
        assert r.status_code == 202, r.text
    finally:
        service.client = real
    final = await h.wait_end(a, r.json()["id"])
    assert (final["status"], final["success_count"]) == ("COMPLETED", 3)
