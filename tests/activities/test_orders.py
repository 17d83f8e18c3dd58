"""The per-order activity, called directly: effect and outcome commit once, retries replay the outcome."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import insert
from temporalio.exceptions import ApplicationError

from activities.contracts import ProcessOrderInput
from activities.orders import OrderActivities
from bulkops.domain.model import ErrorCode, ItemStatus, OperationType
from bulkops.store.selection import insert_ids
from bulkops.store.tables import OPERATIONS
from tests.harness import Harness


async def _operation(
    h: Harness, tenant_id: str, op_type: OperationType, targets: list[uuid.UUID], parameters: dict[str, Any]
) -> uuid.UUID:
    """A running operation's row and its targets, as the API and the snapshot leave them."""
    op_id = uuid.uuid4()
    async with h.sessionmaker() as s, s.begin():
        await s.execute(
            insert(OPERATIONS).values(
                id=op_id,
                lineage_id=op_id,
                tenant_id=tenant_id,
                operation_type=op_type.value,
                status="PROCESSING",
                parameters=parameters,
                selection={},
                max_concurrency=1,
                workflow_id=f"bulk-op-{op_id}",
                errors=[],
            )
        )
        await insert_ids(s, op_id, targets)
    return op_id


async def test_a_repeated_refund_attempt_refunds_once(harness: Harness) -> None:
    h = harness
    a = await h.tenant()
    [order] = await h.seed(a, 1, status="PAID", total_cents=3000)
    params = {"reason": "r", "amount_cents": 1000}
    op_id = await _operation(h, a.id, OperationType.BULK_REFUND, [order], params)
    acts = OrderActivities(h.order_pool)
    inp = ProcessOrderInput(
        operation_id=op_id,
        tenant_id=a.id,
        operation_type=OperationType.BULK_REFUND,
        order_id=order,
        seq=1,
        parameters=params,
    )
    caller = f"bulk-op-{op_id}"
    # Concurrent attempts (a worker thought dead and its replacement) and a later retry.
    outcomes = await asyncio.gather(acts.apply(inp, caller), acts.apply(inp, caller), return_exceptions=True)
    outcomes.append(await acts.apply(inp, caller))
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
    orders = [foreign, uuid.uuid4()]
    op_id = await _operation(h, a.id, OperationType.BULK_CANCEL, orders, {})
    acts = OrderActivities(h.order_pool)
    outcomes = []
    for seq, oid in enumerate(orders, start=1):
        inp = ProcessOrderInput(
            operation_id=op_id,
            tenant_id=a.id,
            operation_type=OperationType.BULK_CANCEL,
            order_id=oid,
            seq=seq,
            parameters={},
        )
        outcomes.append(await acts.apply(inp, f"bulk-op-{op_id}"))
        # A retry returns the recorded outcome.
        assert (await acts.apply(inp, f"bulk-op-{op_id}")) == outcomes[-1]
    assert [(o.status, o.error_code, o.error_message) for o in outcomes] == [
        (ItemStatus.FAILED, ErrorCode.ORDER_NOT_FOUND, "order not found")
    ] * 2
    assert (await h.orders([foreign]))[foreign].status == "PAID"


async def test_an_input_that_disagrees_with_the_row_changes_nothing(harness: Harness) -> None:
    h = harness
    a, b = await h.tenant(), await h.tenant()
    [mine, other] = await h.seed(a, 2, status="PAID", total_cents=3000)
    [theirs] = await h.seed(b, 1, status="PAID", total_cents=3000)
    params = {"reason": "r", "amount_cents": 100}
    op_id = await _operation(h, a.id, OperationType.BULK_REFUND, [mine], params)
    acts = OrderActivities(h.order_pool)
    good = ProcessOrderInput(
        operation_id=op_id,
        tenant_id=a.id,
        operation_type=OperationType.BULK_REFUND,
        order_id=mine,
        seq=1,
        parameters=params,
    )
    bad = [
        (good.model_copy(update={"tenant_id": b.id, "order_id": theirs}), f"bulk-op-{op_id}"),
        (good.model_copy(update={"parameters": {"reason": "r", "amount_cents": 3000}}), f"bulk-op-{op_id}"),
        (good.model_copy(update={"operation_type": OperationType.BULK_CANCEL}), f"bulk-op-{op_id}"),
        (good.model_copy(update={"order_id": other}), f"bulk-op-{op_id}"),  # not in its selection
        (good.model_copy(update={"operation_id": uuid.uuid4()}), f"bulk-op-{op_id}"),  # no such row
        (good, "bulk-op-someone-else"),  # not the row's own workflow
    ]
    for inp, caller in bad:
        with pytest.raises(ApplicationError) as refused:
            await acts.apply(inp, caller)
        assert refused.value.non_retryable and refused.value.type == "AuthorityRefused"
    assert await h.refunds(str(op_id)) == [] and await h.items(str(op_id)) == []
    orders = await h.orders([mine, other, theirs])
    assert all(o.refunded_cents == 0 and o.status == "PAID" for o in orders.values())
