"""The per-order activity: one short transaction that applies the effect and records the outcome.

Exactly once: the outcome row's primary key (operation_id, order_id) and the refund's unique key make
a second commit impossible, and every attempt first looks for an outcome already recorded, so a
retried or replayed attempt returns that outcome without touching the order again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio import activity

from bulkops.models import ErrorCode, ItemStatus, OperationType, OrderOutcome, ProcessOrderInput
from bulkops.rules import decide
from bulkops.tables import BulkOperationItem, Order, Refund

ORDERS = Order.__table__
ITEMS = BulkOperationItem.__table__
REFUNDS = Refund.__table__


def outcome_from_row(row: Any) -> OrderOutcome:
    return OrderOutcome(
        order_id=row.order_id,
        status=ItemStatus(row.status),
        error_code=ErrorCode(row.error_code) if row.error_code else None,
        error_message=row.error_message,
        retryable=row.retryable,
    )


class OrderActivities:
    def __init__(self, sessionmaker: async_sessionmaker) -> None:
        self.sessionmaker = sessionmaker

    @activity.defn(name="process_order")
    async def process_order(self, inp: ProcessOrderInput) -> OrderOutcome:
        op = OperationType(inp.operation_type)
        async with self.sessionmaker() as session, session.begin():
            # One round trip: lock the order (so concurrent attempts serialize on it) and read any
            # outcome an earlier attempt recorded.
            found = (await session.execute(_LOCK_WITH_OUTCOME, {
                "order_id": inp.order_id, "tenant_id": inp.tenant_id, "operation_id": inp.operation_id,
            })).mappings().one_or_none()
            if found is not None and found["done_status"] is not None:
                return _outcome(inp.order_id, found["done_status"], found["done_code"],
                                found["done_message"], found["done_retryable"])
            if found is None:
                done = (await session.execute(
                    select(ITEMS).where(ITEMS.c.operation_id == inp.operation_id,
                                        ITEMS.c.order_id == inp.order_id)
                )).one_or_none()
                if done is not None:
                    return outcome_from_row(done)

            now = datetime.now(UTC)
            if found is None:
                # Another tenant's order reads exactly like an unknown one.
                code, message, result = ErrorCode.ORDER_NOT_FOUND, "order not found", None
                changes, refund_cents = {}, 0
            else:
                decision = decide(op, inp.parameters, dict(found), now)
                code, message, result = decision.error, decision.message, decision.result
                changes, refund_cents = decision.changes, decision.refund_cents
            status = ItemStatus.FAILED if code else ItemStatus.SUCCEEDED
            record = insert(ITEMS).values(
                operation_id=inp.operation_id, order_id=inp.order_id, seq=inp.seq, status=status.value,
                error_code=code.value if code else None, error_message=message or None, retryable=False,
                result=result, processed_at=now,
            )
            # Effect and outcome in one statement (data-modifying CTEs): one more round trip, not three.
            if changes:
                record = record.add_cte(
                    update(ORDERS).where(ORDERS.c.id == inp.order_id)
                    .values(**changes, updated_at=now).cte("apply_effect")
                )
            if refund_cents:
                record = record.add_cte(
                    insert(REFUNDS).values(
                        id=uuid.uuid4(), tenant_id=inp.tenant_id, order_id=inp.order_id,
                        operation_id=inp.operation_id, amount_cents=refund_cents,
                        reason=inp.parameters.get("reason", ""), created_at=now,
                    ).cte("record_refund")
                )
            await session.execute(record)
        return OrderOutcome(
            order_id=inp.order_id, status=status, error_code=code, error_message=message or None
        )


def _outcome(
    order_id: uuid.UUID, status: str, code: str | None, message: str | None, retryable: bool
) -> OrderOutcome:
    return OrderOutcome(
        order_id=order_id, status=ItemStatus(status), error_code=ErrorCode(code) if code else None,
        error_message=message, retryable=retryable,
    )


_LOCK_WITH_OUTCOME = (
    select(
        ORDERS,
        ITEMS.c.status.label("done_status"), ITEMS.c.error_code.label("done_code"),
        ITEMS.c.error_message.label("done_message"), ITEMS.c.retryable.label("done_retryable"),
    )
    .select_from(ORDERS.outerjoin(
        ITEMS, and_(ITEMS.c.operation_id == bindparam("operation_id"), ITEMS.c.order_id == ORDERS.c.id)
    ))
    .where(ORDERS.c.id == bindparam("order_id"), ORDERS.c.tenant_id == bindparam("tenant_id"))
    .with_for_update(of=ORDERS)
)
