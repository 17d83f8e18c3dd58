"""The per-order activity: one short transaction that applies the effect and records the outcome.

Authority: the operation's row (read in the same round trip as the order's lock) decides tenant,
type, parameters and selection; an input that disagrees is refused (`activities.authority`).

Exactly once: the outcome row's primary key (operation_id, order_id) and the refund's unique key make
a second commit impossible, and every attempt first looks for an outcome already recorded, so a
retried or replayed attempt returns that outcome without touching the order again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from temporalio import activity

from activities import order_sql as sql
from activities.authority import Operation, refused
from activities.contracts import PROCESS_ORDER, OrderOutcome, ProcessOrderInput
from bulkops.domain.model import ErrorCode, ItemStatus
from bulkops.domain.rules import decide


def outcome_from_row(row: Any) -> OrderOutcome:
    return _outcome(row.order_id, row.status, row.error_code, row.error_message, row.retryable)


# Operations whose checked parameters a worker keeps at once (a few hundred bytes each).
MAX_CHECKED = 1_000


class OrderActivities:
    """Runs on a plain psycopg pool, not SQLAlchemy: this is the hot path, and the ORM session's
    per-order Python cost was more than the transaction's own (see README, Performance)."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        # An operation's parameters never change after it was accepted: validate them again once per
        # operation, not once per order (they are still compared with the input on every order).
        self._checked: dict[uuid.UUID, dict[str, Any]] = {}

    @activity.defn(name=PROCESS_ORDER)
    async def process_order(self, inp: ProcessOrderInput) -> OrderOutcome:
        return await self.apply(inp, activity.info().workflow_id)

    async def apply(self, inp: ProcessOrderInput, caller: str | None) -> OrderOutcome:
        """The order's step for workflow `caller`: the operation's row decides tenant, type,
        parameters and whether the order is in its selection; the input only has to agree."""
        keys = {"order_id": inp.order_id, "operation_id": inp.operation_id}
        # One transaction: the pool's context commits on success and rolls back on an exception.
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            found = await (await cur.execute(sql.LOCK_WITH_OUTCOME, keys, prepare=True)).fetchone()
            order = found
            if found is None:
                found = await (await cur.execute(sql.OPERATION_ONLY, keys, prepare=True)).fetchone()
            op, found = _operation(inp, found, caller)
            if found["target_seq"] is None:
                raise refused(op.id, f"order {inp.order_id} is not in its selection")
            if found["done_status"] is not None:
                return _outcome(
                    inp.order_id,
                    found["done_status"],
                    found["done_code"],
                    found["done_message"],
                    found["done_retryable"],
                )

            now = datetime.now(UTC)
            code: ErrorCode | None
            parameters = self._parameters(op)
            if order is None:
                # Another tenant's order reads exactly like an unknown one.
                code, message, result = ErrorCode.ORDER_NOT_FOUND, "order not found", None
                changes: dict[str, Any] = {}
                refund_cents = 0
            else:
                decision = decide(op.operation_type, parameters, order, now)
                code, message, result = decision.error, decision.message, decision.result
                changes, refund_cents = decision.changes, decision.refund_cents
            status = ItemStatus.FAILED if code else ItemStatus.SUCCEEDED
            params = {
                **keys,
                "tenant_id": op.tenant_id,
                "seq": found["target_seq"],
                "status": status.value,
                "error_code": code.value if code else None,
                "error_message": message or None,
                "result": Jsonb(result) if result is not None else None,
                "now": now,
                "refund_id": uuid.uuid4(),
                "refund_cents": refund_cents,
                "reason": parameters.get("reason", ""),
                **{f"set_{k}": sql.adapt(v) for k, v in changes.items()},
            }
            statement = sql.record_statement(tuple(sorted(changes)), bool(refund_cents))
            await cur.execute(statement, params, prepare=True)
        return OrderOutcome(
            order_id=inp.order_id, status=status, error_code=code, error_message=message or None
        )

    def _parameters(self, op: Operation) -> dict[str, Any]:
        checked = self._checked.get(op.id)
        if checked is None:
            checked = op.checked_parameters()  # refuses (uncached) when they are not valid
            if len(self._checked) >= MAX_CHECKED:
                self._checked.clear()
            self._checked[op.id] = checked
        return checked


def _operation(
    inp: ProcessOrderInput, found: dict[str, Any] | None, caller: str | None
) -> tuple[Operation, dict[str, Any]]:
    if found is None:
        raise refused(inp.operation_id, "no such operation")
    op = Operation.from_mapping(inp.operation_id, found, prefix="op_")
    op.verify(
        tenant_id=inp.tenant_id, operation_type=inp.operation_type, parameters=inp.parameters, caller=caller
    )
    return op, found


def _outcome(
    order_id: uuid.UUID, status: str, code: str | None, message: str | None, retryable: bool
) -> OrderOutcome:
    return OrderOutcome(
        order_id=order_id,
        status=ItemStatus(status),
        error_code=ErrorCode(code) if code else None,
        error_message=message,
        retryable=retryable,
    )
