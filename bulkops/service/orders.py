"""The tenant's orders: create (up to 1,000 at once) and read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import async_sessionmaker

from bulkops.domain.model import OrderStatus
from bulkops.domain.records import OrderRecord
from bulkops.domain.requests import OrdersCreate
from bulkops.service.errors import NotFound
from bulkops.service.limits import within_rate
from bulkops.settings import Settings
from bulkops.store.orders import get_order, insert_orders, page_of_orders
from bulkops.store.tables import ORDERS


class OrderService:
    def __init__(self, sessionmaker: async_sessionmaker, settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings

    async def create(self, tenant_id: str, body: OrdersCreate) -> list[OrderRecord]:
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
            return await insert_orders(session, values)

    async def list(
        self, tenant_id: str, *, status: OrderStatus | None, limit: int, cursor: str | None
    ) -> tuple[list[OrderRecord], str | None]:
        """Oldest first."""
        async with self.sessionmaker() as session:
            return await page_of_orders(session, tenant_id, status, limit, cursor)

    async def get(self, tenant_id: str, order_id: uuid.UUID) -> OrderRecord:
        async with self.sessionmaker() as session:
            order = await get_order(session, tenant_id, order_id)
        if order is None:
            raise NotFound("order")
        return order
