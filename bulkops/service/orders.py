"""The tenant's orders: create (up to 1,000 at once) and read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from bulkops.domain.model import OrderStatus
from bulkops.domain.requests import OrdersCreate
from bulkops.service.errors import NotFound
from bulkops.service.limits import within_rate
from bulkops.settings import Settings
from bulkops.store.pagination import keyset_page
from bulkops.store.tables import ORDERS


class OrderService:
    def __init__(self, sessionmaker: async_sessionmaker, settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings

    async def create(self, tenant_id: str, body: OrdersCreate) -> list[Any]:
        now = datetime.now(UTC)
        values = [
            {
                **o.model_dump(exclude={"paid_at"}),
                "paid_at": o.paid_at_or_default(now),
                "id": uuid.uuid4(),
                "tenant_id": tenant_id,
                "status": o.status.value,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            for o in body.orders
        ]
        async with self.sessionmaker() as session, session.begin():
            per_minute = self.settings.tenant_orders_per_minute
            await within_rate(session, ORDERS, tenant_id, per_minute, len(values), "orders")
            return list((await session.execute(insert(ORDERS).returning(ORDERS), values)).all())

    async def list(
        self, tenant_id: str, *, status: OrderStatus | None, limit: int, cursor: str | None
    ) -> tuple[list[Any], str | None]:
        """Oldest first."""
        stmt = select(ORDERS).where(ORDERS.c.tenant_id == tenant_id)
        if status:
            stmt = stmt.where(ORDERS.c.status == status.value)
        keys = (ORDERS.c.created_at, ORDERS.c.id)
        async with self.sessionmaker() as session:
            return await keyset_page(
                session, stmt, keys, (datetime.fromisoformat, uuid.UUID), cursor=cursor, limit=limit
            )

    async def get(self, tenant_id: str, order_id: uuid.UUID) -> Any:
        async with self.sessionmaker() as session:
            row = (
                await session.execute(
                    select(ORDERS).where(ORDERS.c.id == order_id, ORDERS.c.tenant_id == tenant_id)
                )
            ).one_or_none()
        if row is None:
            raise NotFound("order")
        return row
