"""The per-order activity, called directly: effect and outcome commit once, retries replay the outcome."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import insert

from activities.contracts import ProcessOrderInput
from activities.orders import OrderActivities
from bulkops.domain.model import ErrorCode, ItemStatus, OperationType
from bulkops.store.tables import OPERATIONS
from tests.harness import Harness


async def _operation(h: Harness, tenant_id: str, op_type: OperationType) -> uuid.UUID:
    op_id = uuid.uuid4()
    async with h.sessionmaker() as s, s.begin():
        await s.execute(
            insert(OPERATIONS).values(
                id=op_id,
                tenant_id=tenant_id,
                operation_type=op_type.value,
                status="PROCESSING",
                parameters={},
                selection={},
                max_concurrency=1,
                workflow_id=f"bulk-op-{op_id}",
                errors=[],
            )
        )
    return op_id


async def test_a_repeated_refund_attempt_refunds_once(harness: Harness) -> None:
    h = harness
    a = await h.tenant()
    [order] = await h.seed(a, 1, status="PAID", total_cents=3000)
    op_id = await _operation(h, a.id, OperationType.BULK_REFUND)
    acts = OrderActivities(h.order_pool)
    inp = ProcessOrderInput(
        operation_id=op_id,
        tenant_id=a.id,
        operation_type=OperationType.BULK_REFUND,
        order_id=order,
        seq=1,
        parameters={"reason": "r", "amount_cents": 1000},
    )
    # Concurrent attempts (a worker thought dead and its replacement) and a later retry.
    outcomes = await asyncio.gather(acts.process_order(inp), acts.process_order(inp), return_exceptions=True)
    outcomes.append(await acts.process_order(inp))
    ok = [o for o in outcomes if not isinstance(o, BaseException)]
    assert ok and all(o.status == ItemStatus.SUCCEEDED for o in ok)
    refunds = await h.refunds(str(op_id))
    assert [r.amount_cents for r in refunds] == [1000]
    assert (await h.orders([order]))[order].refunded_cents == 1000
    assert len(await h.items(str(op_id))) == 1


async def test_unknown_and_foreign_orders_read_alike(harness: Harness) -> None:
    h = harness
    a, b = await h.tenant(), await h.tenant()
    [foreign] = await h.seed(b, 1, status="PAID")
    op_id = await _operation(h, a.id, OperationType.BULK_CANCEL)
    acts = OrderActivities(h.order_pool)
    outcomes = []
    for seq, oid in enumerate([foreign, uuid.uuid4()], start=1):
        inp = ProcessOrderInput(
            operation_id=op_id,
            tenant_id=a.id,
            operation_type=OperationType.BULK_CANCEL,
            order_id=oid,
            seq=seq,
            parameters={},
        )
        outcomes.append(await acts.process_order(inp))
        assert (await acts.process_order(inp)) == outcomes[-1]  # a retry returns the recorded outcome
    assert [(o.status, o.error_code, o.error_message) for o in outcomes] == [
        (ItemStatus.FAILED, ErrorCode.ORDER_NOT_FOUND, "order not found")
    ] * 2
    assert (await h.orders([foreign]))[foreign].status == "PAID"
