"""The per-order statements as plain SQL, executed as prepared statements on the raw psycopg
connection: this is the hot path, and SQLAlchemy's per-statement Python cost dominated it."""

from __future__ import annotations

from functools import lru_cache

from psycopg.types.json import Jsonb

from bulkops.domain.model import ORDER_FIELDS

ORDER_COLUMNS = ", ".join(ORDER_FIELDS)

OUTCOME_ONLY = (
    "SELECT status AS done_status, error_code AS done_code, error_message AS done_message, "
    "retryable AS done_retryable FROM bulk_operation_items "
    "WHERE operation_id = %(operation_id)s AND order_id = %(order_id)s"
)

# The columns a per-order effect may set: decisions name columns, and only these reach the SQL.
UPDATABLE = frozenset(
    {
        "status",
        "cancelled_at",
        "cancel_reason",
        "refunded_cents",
        "note",
        "shipping_method",
        "tags",
        "metadata",
        "version",
    }
)

# What the operation's row says (the activity's authority) and an outcome an earlier attempt recorded.
_OPERATION = (
    "op.tenant_id AS op_tenant_id, op.operation_type AS op_operation_type, op.parameters AS op_parameters, "
    "op.workflow_id AS op_workflow_id, op.status AS op_status, t.seq AS target_seq, "
    "i.status AS done_status, i.error_code AS done_code, i.error_message AS done_message, "
    "i.retryable AS done_retryable"
)

# Lock the order — one of the operation's targets, of the operation's tenant — (concurrent attempts
# serialize on it) and read the operation and an earlier outcome, in one round trip.
LOCK_WITH_OUTCOME = (
    f"SELECT {', '.join('o.' + c.strip() for c in ORDER_COLUMNS.split(','))}, {_OPERATION} "
    "FROM bulk_operations op "
    "JOIN bulk_operation_targets t ON t.operation_id = op.id AND t.order_id = %(order_id)s "
    "JOIN orders o ON o.id = t.order_id AND o.tenant_id = op.tenant_id "
    "LEFT JOIN bulk_operation_items i ON i.operation_id = op.id AND i.order_id = o.id "
    "WHERE op.id = %(operation_id)s FOR UPDATE OF o"
)

# No such order for the operation's tenant (or not a target, or no such operation): the same reads.
OPERATION_ONLY = (
    f"SELECT {_OPERATION} FROM bulk_operations op "
    "LEFT JOIN bulk_operation_targets t ON t.operation_id = op.id AND t.order_id = %(order_id)s "
    "LEFT JOIN bulk_operation_items i ON i.operation_id = op.id AND i.order_id = %(order_id)s "
    "WHERE op.id = %(operation_id)s"
)

_RECORD = (
    "INSERT INTO bulk_operation_items "
    "(operation_id, order_id, seq, status, error_code, error_message, retryable, result, processed_at) "
    "VALUES (%(operation_id)s, %(order_id)s, %(seq)s, %(status)s, %(error_code)s, %(error_message)s, "
    "false, %(result)s, %(now)s)"
)

_REFUND_CTE = (
    "record_refund AS (INSERT INTO refunds (id, tenant_id, order_id, operation_id, amount_cents, reason, "
    "created_at) VALUES (%(refund_id)s, %(tenant_id)s, %(order_id)s, %(operation_id)s, %(refund_cents)s, "
    "%(reason)s, %(now)s))"
)


@lru_cache(maxsize=64)
def record_statement(changed: tuple[str, ...], refund: bool) -> str:
    """Effect and outcome in one statement (data-modifying CTEs run exactly once, all or nothing)."""
    if not UPDATABLE.issuperset(changed):
        raise ValueError(f"not an updatable order column: {sorted(set(changed) - UPDATABLE)}")
    ctes = []
    if changed:
        sets = ", ".join(f"{c} = %(set_{c})s" for c in changed)
        ctes.append(
            f"apply_effect AS (UPDATE orders SET {sets}, updated_at = %(now)s WHERE id = %(order_id)s)"
        )
    if refund:
        ctes.append(_REFUND_CTE)
    return (f"WITH {', '.join(ctes)} " if ctes else "") + _RECORD


def adapt(value: object) -> object:
    return Jsonb(value) if isinstance(value, dict) else value
