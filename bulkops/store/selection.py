"""Turn a stored selection into SQL: one INSERT … SELECT per snapshot, however large the selection."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select

from bulkops.domain.model import ItemStatus
from bulkops.domain.requests import OrderFilter
from bulkops.store.tables import ITEMS, OPERATIONS, ORDERS, TARGETS, not_terminal


def filter_clause(tenant_id: str, flt: OrderFilter) -> Any:
    conds = [ORDERS.c.tenant_id == tenant_id]
    if flt.statuses:
        conds.append(ORDERS.c.status.in_([s.value for s in flt.statuses]))
    if flt.created_from:
        conds.append(ORDERS.c.created_at >= flt.created_from)
    if flt.created_to:
        conds.append(ORDERS.c.created_at < flt.created_to)
    if flt.tags_any:
        conds.append(ORDERS.c.tags.overlap(flt.tags_any))
    if flt.customer_email:
        conds.append(func.lower(ORDERS.c.customer_email) == flt.customer_email.lower())
    return and_(*conds)


def filter_targets(operation_id: uuid.UUID, tenant_id: str, flt: OrderFilter) -> Select[Any]:
    """(operation_id, seq, order_id) rows in a stable order: oldest first."""
    return select(
        literal(operation_id).label("operation_id"),
        func.row_number().over(order_by=(ORDERS.c.created_at, ORDERS.c.id)).label("seq"),
        ORDERS.c.id,
    ).where(filter_clause(tenant_id, flt))


def _failed(original_id: uuid.UUID, all_failed: bool) -> ColumnElement[bool]:
    """The original's failed outcomes a retry may take: the retryable ones, or all with `all_failed`."""
    conds = [ITEMS.c.operation_id == original_id, ITEMS.c.status == ItemStatus.FAILED.value]
    if not all_failed:
        conds.append(ITEMS.c.retryable.is_(True))
    return and_(*conds)


def failed_items(original_id: uuid.UUID, all_failed: bool) -> Select[Any]:
    return select(ITEMS.c.order_id, ITEMS.c.seq).where(_failed(original_id, all_failed))


def retry_targets(operation_id: uuid.UUID, original_id: uuid.UUID, all_failed: bool) -> Select[Any]:
    """(operation_id, seq, order_id) of the original's failures that no other retry of it covers: one
    that has not ended, or one whose outcome for the order is a success."""
    other, done = OPERATIONS.alias("other_retry"), ITEMS.alias("retry_outcome")
    succeeded = (
        select(done.c.order_id)
        .where(
            done.c.operation_id == other.c.id,
            done.c.order_id == TARGETS.c.order_id,
            done.c.status == ItemStatus.SUCCEEDED.value,
        )
        .exists()
    )
    covered = (
        select(TARGETS.c.order_id)
        .join(other, other.c.id == TARGETS.c.operation_id)
        .where(
            other.c.retry_of == original_id,
            other.c.id != operation_id,
            TARGETS.c.order_id == ITEMS.c.order_id,
            or_(not_terminal(other), succeeded),
        )
        .exists()
    )
    return select(
        literal(operation_id).label("operation_id"),
        func.row_number().over(order_by=ITEMS.c.seq).label("seq"),
        ITEMS.c.order_id,
    ).where(_failed(original_id, all_failed), ~covered)
