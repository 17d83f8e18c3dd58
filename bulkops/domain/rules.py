"""The business rules of CONTRACT §3, each stated once.

Each operation type's *refusals* are an ordered list of checks written in a small expression
language over the order's columns and the operation's parameters. The same checks yield the Python
decision the per-order activity takes on a locked row (`decide`) and the SQL `CASE` a dry run counts
with (`rule_sql`); tests/domain/test_rule_agreement.py checks that they agree on generated orders.

A rule violation is an outcome (a code and a message), never an exception: Temporal retries only
transient faults, and a rule that fails now fails on every retry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, literal, null

from bulkops.domain.checks import Check, Col, Param, is_null
from bulkops.domain.model import ORDER_FIELDS, ErrorCode, OperationType, OrderStatus

CANCELLABLE = (OrderStatus.PENDING.value, OrderStatus.PAID.value)


@dataclass
class Decision:
    error: ErrorCode | None = None
    message: str = ""
    changes: dict[str, Any] = field(default_factory=dict)
    refund_cents: int = 0
    result: dict[str, Any] | None = None


def _fail(code: ErrorCode, message: str) -> Decision:
    return Decision(error=code, message=message)


def json_merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch: null deletes a key, objects merge recursively."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = json_merge(out[key], value)
        else:
            out[key] = value
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "hex") and not isinstance(value, (bytes, str, int, float)):
        return str(value)
    return value


STATUS, PAID_AT = Col("status"), Col("paid_at")
REFUNDABLE = Col("total_cents") - Col("refunded_cents")
AMOUNT = Param("amount_cents")

# Per type, the refusals in the order they are checked: the first that holds is the outcome.
CHECKS: dict[OperationType, tuple[Check, ...]] = {
    OperationType.BULK_CANCEL: (
        Check(ErrorCode.ALREADY_CANCELLED, STATUS == OrderStatus.CANCELLED.value),
        Check(ErrorCode.ORDER_NOT_CANCELLABLE, STATUS.not_in(CANCELLABLE)),
    ),
    OperationType.BULK_REFUND: (
        Check(ErrorCode.ORDER_NOT_PAID, is_null(PAID_AT)),
        Check(ErrorCode.NOTHING_TO_REFUND, REFUNDABLE <= 0),
        # Only an explicit amount can exceed what is left; without one the rest is refunded.
        Check(ErrorCode.AMOUNT_EXCEEDS_REFUNDABLE, REFUNDABLE < AMOUNT, needs="amount_cents"),
    ),
    OperationType.BULK_UPDATE: (Check(ErrorCode.ORDER_CLOSED, STATUS == OrderStatus.CANCELLED.value),),
    OperationType.BULK_EXPORT: (),
}

MESSAGES = {
    ErrorCode.ALREADY_CANCELLED: lambda o, p: "order is already cancelled",
    ErrorCode.ORDER_NOT_CANCELLABLE: lambda o, p: f"an order in status {o['status']} cannot be cancelled",
    ErrorCode.ORDER_NOT_PAID: lambda o, p: "order was never paid",
    ErrorCode.NOTHING_TO_REFUND: lambda o, p: "order is already fully refunded",
    ErrorCode.AMOUNT_EXCEEDS_REFUNDABLE: lambda o, p: (
        f"amount {p['amount_cents']} exceeds the refundable {o['total_cents'] - o['refunded_cents']} cents"
    ),
    ErrorCode.ORDER_CLOSED: lambda o, p: "a cancelled order cannot be updated",
}


def refusal(op: OperationType, params: dict[str, Any], order: dict[str, Any]) -> ErrorCode | None:
    """The first check of `op` that refuses this order, or None."""
    for check in CHECKS[op]:
        if check.applies(params) and check.when.py(order, params):
            return check.code
    return None


# The fields a revert may put back (a column name never comes from stored data).
REVERTIBLE = ("note", "shipping_method", "tags", "metadata")


def decide_revert(order: dict[str, Any], recorded: dict[str, Any] | None) -> Decision:
    """Put back what a `BULK_UPDATE` recorded for this order, unless the order changed since."""
    if not recorded or not isinstance(recorded.get("previous"), dict):
        return _fail(ErrorCode.ORDER_CHANGED_SINCE, "the update recorded no previous values for this order")
    if order["version"] != recorded.get("version"):
        return _fail(
            ErrorCode.ORDER_CHANGED_SINCE,
            f"order changed since the update (now version {order['version']}, "
            f"the update left version {recorded.get('version')})",
        )
    changes: dict[str, Any] = {k: v for k, v in recorded["previous"].items() if k in REVERTIBLE}
    previous = {k: _jsonable(order[k]) for k in changes}
    changes["version"] = order["version"] + 1
    return Decision(changes=changes, result={"version": changes["version"], "previous": previous})


def rule_sql(op: OperationType, params: dict[str, Any], orders: Any) -> Any:
    """The same checks as one SQL CASE over the `orders` table (NULL: would succeed). Used by dry
    runs, which must size any selection without touching a row."""
    whens = [
        (check.when.sql(orders.c, params), literal(check.code.value))
        for check in CHECKS[op]
        if check.applies(params)
    ]
    return case(*whens, else_=null()) if whens else null()


def decide(op: OperationType, params: dict[str, Any], order: dict[str, Any], now: datetime) -> Decision:
    code = refusal(op, params, order)
    if code is not None:
        return _fail(code, MESSAGES[code](order, params))
    return EFFECTS[op](params, order, now)


def _cancel(params: dict[str, Any], order: dict[str, Any], now: datetime) -> Decision:
    return Decision(
        changes={
            "status": OrderStatus.CANCELLED.value,
            "cancelled_at": now,
            "cancel_reason": params.get("reason", ""),
        },
        result={"previous_status": order["status"]},
    )


def _refund(params: dict[str, Any], order: dict[str, Any], now: datetime) -> Decision:
    amount = params.get("amount_cents") or order["total_cents"] - order["refunded_cents"]
    refunded = order["refunded_cents"] + amount
    new_status = order["status"]  # a cancelled order stays cancelled
    if new_status != OrderStatus.CANCELLED:
        full = refunded >= order["total_cents"]
        new_status = OrderStatus.REFUNDED.value if full else OrderStatus.PARTIALLY_REFUNDED.value
    return Decision(
        changes={"refunded_cents": refunded, "status": new_status},
        refund_cents=amount,
        result={"amount_cents": amount, "refunded_cents": refunded},
    )


def _update(params: dict[str, Any], order: dict[str, Any], now: datetime) -> Decision:
    changes: dict[str, Any] = dict(params.get("set") or {})
    if params.get("add_tags") or params.get("remove_tags"):
        tags = [t for t in order["tags"] if t not in set(params.get("remove_tags") or [])]
        tags += [t for t in dict.fromkeys(params.get("add_tags") or []) if t not in tags]
        changes["tags"] = tags
    if params.get("metadata"):
        changes["metadata"] = json_merge(order["metadata"] or {}, params["metadata"])
    # What a revert puts back: each changed field's value before this update.
    previous = {k: _jsonable(order[k]) for k in changes}
    changes["version"] = order["version"] + 1
    return Decision(changes=changes, result={"version": changes["version"], "previous": previous})


def _export(params: dict[str, Any], order: dict[str, Any], now: datetime) -> Decision:
    fields = params.get("fields") or list(ORDER_FIELDS)
    return Decision(result={f: _jsonable(order[f]) for f in fields})


EFFECTS = {
    OperationType.BULK_CANCEL: _cancel,
    OperationType.BULK_REFUND: _refund,
    OperationType.BULK_UPDATE: _update,
    OperationType.BULK_EXPORT: _export,
}
