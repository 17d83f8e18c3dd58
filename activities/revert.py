"""The per-order step of a revert: put back, on one order, the values the reverted `BULK_UPDATE`
recorded in its outcome row, unless the order changed since (its `version` moved on).

Same guarantees as `process_order` (effect and outcome in one transaction, an earlier outcome is
returned as is), and the same authority: tenant and the operation reverted come from the revert's
own row, never from the input.
"""

from __future__ import annotations

from datetime import UTC, datetime

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from temporalio import activity

from activities import order_sql as sql
from activities.authority import Operation
from activities.contracts import REVERT_ORDER, OrderOutcome, ProcessOrderInput
from bulkops.domain.model import ErrorCode, ItemStatus
from bulkops.domain.rules import decide_revert

# The order locked, the revert's own outcome if an earlier attempt recorded it, and what the
# reverted update recorded for this order.
LOCK_FOR_REVERT = (
    f"SELECT {', '.join('o.' + c.strip() for c in sql.ORDER_COLUMNS.split(','))}, "
    "i.status AS done_status, i.error_code AS done_code, i.error_message AS done_message, "
    "i.retryable AS done_retryable, prev.result AS prev_result "
    "FROM bulk_operations op "
    "JOIN orders o ON o.id = %(order_id)s AND o.tenant_id = op.tenant_id "
    "LEFT JOIN bulk_operation_items prev ON prev.operation_id = op.revert_of AND prev.order_id = o.id "
    "AND prev.status = 'SUCCEEDED' "
    "LEFT JOIN bulk_operation_items i ON i.operation_id = op.id AND i.order_id = o.id "
    "WHERE op.id = %(operation_id)s AND op.revert_of IS NOT NULL FOR UPDATE OF o"
)


# The revert's own row and whether the order is one of its targets: its authority.
OPERATION = (
    "SELECT op.tenant_id, op.operation_type, op.parameters, op.workflow_id, op.status "
    "FROM bulk_operations op "
    "JOIN bulk_operation_targets t ON t.operation_id = op.id AND t.order_id = %(order_id)s "
    "WHERE op.id = %(operation_id)s AND op.revert_of IS NOT NULL"
)


class RevertActivities:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    @activity.defn(name=REVERT_ORDER)
    async def revert_order(self, inp: ProcessOrderInput) -> OrderOutcome:
        keys = {"order_id": inp.order_id, "operation_id": inp.operation_id}
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            op = await (await cur.execute(OPERATION, keys, prepare=True)).fetchone()
            Operation.from_mapping(inp.operation_id, op).verify(
                tenant_id=inp.tenant_id, operation_type=inp.operation_type
            )
            found = await (await cur.execute(LOCK_FOR_REVERT, keys, prepare=True)).fetchone()
            if found is None:
                found = await (await cur.execute(sql.OUTCOME_ONLY, keys, prepare=True)).fetchone()
            if found is not None and found["done_status"] is not None:
                return OrderOutcome(
                    order_id=inp.order_id,
                    status=ItemStatus(found["done_status"]),
                    error_code=ErrorCode(found["done_code"]) if found["done_code"] else None,
                    error_message=found["done_message"],
                    retryable=found["done_retryable"],
                )
            if found is None:
                code: ErrorCode | None = ErrorCode.ORDER_NOT_FOUND
                message, result, changes = "order not found", None, {}
            else:
                decision = decide_revert(found, found["prev_result"])
                code, message, result, changes = (
                    decision.error,
                    decision.message,
                    decision.result,
                    decision.changes,
                )
            status = ItemStatus.FAILED if code else ItemStatus.SUCCEEDED
            params = {
                **keys,
                "seq": inp.seq,
                "status": status.value,
                "error_code": code.value if code else None,
                "error_message": message or None,
                "result": Jsonb(result) if result is not None else None,
                "now": datetime.now(UTC),
                **{f"set_{k}": sql.adapt(v) for k, v in changes.items()},
            }
            await cur.execute(sql.record_statement(tuple(sorted(changes)), False), params, prepare=True)
        return OrderOutcome(
            order_id=inp.order_id, status=status, error_code=code, error_message=message or None
        )
