"""The `orders` repository for the API: orders read as typed `OrderRecord`s and created in bulk. The
operations' activities change orders in their own per-order transactions (`activities.order_sql`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bulkops.domain.model import OrderStatus
from bulkops.domain.records import OrderRecord
from bulkops.store.pagination import keyset_page
from bulkops.store.records import from_row
from bulkops.store.tables import ORDERS


def order_record(row: Row[Any]) -> OrderRecord:
    return from_row(OrderRecord, row, status=OrderStatus)


async def insert_orders(session: AsyncSession, values: list[dict[str, Any]]) -> list[OrderRecord]:
    return [order_record(r) for r in (await session.execute(insert(ORDERS).returning(ORDERS), values)).all()]


async def get_order(session: AsyncSession, tenant_id: str, order_id: uuid.UUID) -> OrderRecord | None:
    row = (
        await session.execute(select(ORDERS).where(ORDERS.c.id == order_id, ORDERS.c.tenant_id == tenant_id))
    ).one_or_none()
    return order_record(row) if row is not None else None


async def page_of_orders(
    session: AsyncSession, tenant_id: str, status: OrderStatus | None, limit: int, cursor: str | None
) -> tuple[list[OrderRecord], str | None]:
    """Oldest first."""
    stmt = select(ORDERS).where(ORDERS.c.tenant_id == tenant_id)
    if status:
        stmt = stmt.where(ORDERS.c.status == status.value)
    keys = (ORDERS.c.created_at, ORDERS.c.id)
    rows, next_cursor = await keyset_page(
        session, stmt, keys, (datetime.fromisoformat, uuid.UUID), cursor=cursor, limit=limit
    )
    return [order_record(r) for r in rows], next_cursor
