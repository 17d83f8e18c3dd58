"""Turn a stored selection into SQL: one INSERT … SELECT per snapshot, however large the selection."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, and_, func, literal, select

from bulkops.domain.model import ItemStatus
from bulkops.domain.requests import OrderFilter
from bulkops.store.tables import ITEMS, ORDERS


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


def retry_targets(operation_id: uuid.UUID, original_id: uuid.UUID, all_failed: bool) -> Select[Any]:
    conds = [ITEMS.c.operation_id == original_id, ITEMS.c.status == ItemStatus.FAILED.value]
    if not all_failed:
        conds.append(ITEMS.c.retryable.is_(True))
    return select(
        literal(operation_id).label("operation_id"),
        func.row_number().over(order_by=ITEMS.c.seq).label("seq"),
        ITEMS.c.order_id,
    ).where(and_(*conds))
