"""The business rules of CONTRACT §3, as pure functions over a locked order row.

A rule violation is an outcome (a code and a message), never an exception: Temporal retries only
transient faults, and a rule that fails now fails on every retry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bulkops.domain.model import ORDER_FIELDS, ErrorCode, OperationType, OrderStatus

CANCELLABLE = {OrderStatus.PENDING.value, OrderStatus.PAID.value}


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


def decide(op: OperationType, params: dict[str, Any], order: dict[str, Any], now: datetime) -> Decision:
    status = order["status"]
    if op is OperationType.BULK_CANCEL:
        if status == OrderStatus.CANCELLED:
            return _fail(ErrorCode.ALREADY_CANCELLED, "order is already cancelled")
        if status not in CANCELLABLE:
            return _fail(ErrorCode.ORDER_NOT_CANCELLABLE, f"an order in status {status} cannot be cancelled")
        return Decision(
            changes={
                "status": OrderStatus.CANCELLED.value,
                "cancelled_at": now,
                "cancel_reason": params.get("reason", ""),
            },
            result={"previous_status": status},
        )
    if op is OperationType.BULK_REFUND:
        if order["paid_at"] is None:
            return _fail(ErrorCode.ORDER_NOT_PAID, "order was never paid")
        refundable = order["total_cents"] - order["refunded_cents"]
        if refundable <= 0:
            return _fail(ErrorCode.NOTHING_TO_REFUND, "order is already fully refunded")
        amount = params.get("amount_cents") or refundable
        if amount > refundable:
            return _fail(
                ErrorCode.AMOUNT_EXCEEDS_REFUNDABLE,
                f"amount {amount} exceeds the refundable {refundable} cents",
            )
        refunded = order["refunded_cents"] + amount
        new_status = status
        if status != OrderStatus.CANCELLED:
            full = refunded >= order["total_cents"]
            new_status = OrderStatus.REFUNDED.value if full else OrderStatus.PARTIALLY_REFUNDED.value
        return Decision(
            changes={"refunded_cents": refunded, "status": new_status},
            refund_cents=amount,
            result={"amount_cents": amount, "refunded_cents": refunded},
        )
    if op is OperationType.BULK_UPDATE:
        if status == OrderStatus.CANCELLED:
            return _fail(ErrorCode.ORDER_CLOSED, "a cancelled order cannot be updated")
        changes: dict[str, Any] = {}
        for key, value in (params.get("set") or {}).items():
            changes[key] = value
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
    if op is OperationType.BULK_EXPORT:
        fields = params.get("fields") or list(ORDER_FIELDS)
        return Decision(result={f: _jsonable(order[f]) for f in fields})
    raise ValueError(f"unknown operation type {op}")


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
    """The same rules as `decide`, as one SQL CASE over the `orders` table (NULL: would succeed).

    Used by dry runs, which must size any selection without touching a row.
    """
    from sqlalchemy import case, literal, null

    c = orders.c
    whens: list[tuple[Any, Any]] = []
    if op is OperationType.BULK_CANCEL:
        whens = [
            (c.status == OrderStatus.CANCELLED.value, literal(ErrorCode.ALREADY_CANCELLED.value)),
            (c.status.notin_(list(CANCELLABLE)), literal(ErrorCode.ORDER_NOT_CANCELLABLE.value)),
        ]
    elif op is OperationType.BULK_REFUND:
        whens = [
            (c.paid_at.is_(None), literal(ErrorCode.ORDER_NOT_PAID.value)),
            (c.refunded_cents >= c.total_cents, literal(ErrorCode.NOTHING_TO_REFUND.value)),
        ]
        if params.get("amount_cents"):
            whens.append(
                (
                    c.total_cents - c.refunded_cents < params["amount_cents"],
                    literal(ErrorCode.AMOUNT_EXCEEDS_REFUNDABLE.value),
                )
            )
    elif op is OperationType.BULK_UPDATE:
        whens = [(c.status == OrderStatus.CANCELLED.value, literal(ErrorCode.ORDER_CLOSED.value))]
    if not whens:
        return null()
    return case(*whens, else_=null())
