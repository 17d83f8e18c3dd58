"""The per-order activity: one short transaction that applies the effect and records the outcome.

Exactly once: the outcome row's primary key (operation_id, order_id) and the refund's unique key make
a second commit impossible, and every attempt first looks for an outcome already recorded, so a
retried or replayed attempt returns that outcome without touching the order again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio import activity

from bulkops.rules import decide
from bulkops.models import ErrorCode, ItemStatus, OperationType, OrderOutcome, ProcessOrderInput
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
            # Lock the order first so that two concurrent attempts serialize on it; then look for an
            # outcome recorded by an earlier attempt.
            order = (
                await session.execute(
                    select(ORDERS)
                    .where(ORDERS.c.id == inp.order_id, ORDERS.c.tenant_id == inp.tenant_id)
                    .with_for_update()
                )
            ).mappings().one_or_none()
            done = (
                await session.execute(
                    select(ITEMS).where(ITEMS.c.operation_id == inp.operation_id,
                                        ITEMS.c.order_id == inp.order_id)
                )
            ).one_or_none()
            if done is not None:
                return outcome_from_row(done)

            now = datetime.now(UTC)
            if order is None:
                # Another tenant's order reads exactly like an unknown one.
                code, message, result = ErrorCode.ORDER_NOT_FOUND, "order not found", None
            else:
                decision = decide(op, inp.parameters, dict(order), now)
                code, message, result = decision.error, decision.message, decision.result
                if code is None:
                    await self._apply(session, inp, decision.changes, decision.refund_cents, now)
            status = ItemStatus.FAILED if code else ItemStatus.SUCCEEDED
            await session.execute(
                insert(ITEMS).values(
                    operation_id=inp.operation_id, order_id=inp.order_id, seq=inp.seq,
                    status=status.value, error_code=code.value if code else None,
                    error_message=message or None, retryable=False, result=result, processed_at=now,
                )
            )
        return OrderOutcome(order_id=inp.order_id, status=status, error_code=code, error_message=message or None)

    async def _apply(
        self, session: Any, inp: ProcessOrderInput, changes: dict[str, Any], refund_cents: int,
        now: datetime,
    ) -> None:
        if changes:
            values = {("metadata" if k == "metadata" else k): v for k, v in changes.items()}
            await session.execute(
                update(ORDERS).where(ORDERS.c.id == inp.order_id).values(**values, updated_at=now)
            )
        if refund_cents:
            await session.execute(
                pg_insert(REFUNDS).values(
                    tenant_id=inp.tenant_id, order_id=inp.order_id, operation_id=inp.operation_id,
                    amount_cents=refund_cents, reason=inp.parameters.get("reason", ""), created_at=now,
                )
            )
