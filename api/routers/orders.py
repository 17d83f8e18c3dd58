"""`/v1/orders`: create (up to 1,000 at once) and read the tenant's orders."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import insert, literal, select, tuple_

from api.deps import OperatorDep, PrincipalDep, SessionmakerDep
from api.problems import Problem
from api.schemas import OrderPage, OrderRead
from bulkops.domain.model import OrderStatus
from bulkops.domain.requests import OrdersCreate
from bulkops.store.pagination import BadCursor, decode_cursor, encode_cursor
from bulkops.store.tables import ORDERS

router = APIRouter(prefix="/v1/orders", tags=["orders"])


def _read(row: object) -> OrderRead:
    return OrderRead.model_validate(row, from_attributes=True)


@router.post("", status_code=201, response_model=list[OrderRead])
async def create_orders(
    body: OrdersCreate, principal: OperatorDep, sessionmaker: SessionmakerDep
) -> list[OrderRead]:
    now = datetime.now(UTC)
    values = []
    for o in body.orders:
        paid_at = o.paid_at
        if paid_at is None and o.status not in (OrderStatus.PENDING, OrderStatus.CANCELLED):
            paid_at = now
        values.append(
            {
                **o.model_dump(exclude={"paid_at"}),
                "paid_at": paid_at,
                "id": uuid.uuid4(),
                "tenant_id": principal.tenant_id,
                "status": o.status.value,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    async with sessionmaker() as session, session.begin():
        rows = (await session.execute(insert(ORDERS).returning(ORDERS), values)).all()
    return [_read(r) for r in rows]


@router.get("", response_model=OrderPage)
async def list_orders(
    principal: PrincipalDep,
    sessionmaker: SessionmakerDep,
    status: OrderStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> OrderPage:
    stmt = select(ORDERS).where(ORDERS.c.tenant_id == principal.tenant_id)
    if status:
        stmt = stmt.where(ORDERS.c.status == status.value)
    if cursor:
        try:
            created, last_id = decode_cursor(cursor, 2)
            key = (datetime.fromisoformat(created), uuid.UUID(last_id))
            stmt = stmt.where(tuple_(ORDERS.c.created_at, ORDERS.c.id) > tuple_(*map(literal, key)))
        except (BadCursor, ValueError, TypeError):
            raise Problem(400, "cursor is not valid") from None
    async with sessionmaker() as session:
        rows = (await session.execute(stmt.order_by(ORDERS.c.created_at, ORDERS.c.id).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return OrderPage(
        items=[_read(r) for r in rows],
        next_cursor=encode_cursor(rows[-1].created_at.isoformat(), rows[-1].id) if more else None,
    )


@router.get("/{order_id}", response_model=OrderRead)
async def get_order(order_id: uuid.UUID, principal: PrincipalDep, sessionmaker: SessionmakerDep) -> OrderRead:
    async with sessionmaker() as session:
        row = (
            await session.execute(
                select(ORDERS).where(ORDERS.c.id == order_id, ORDERS.c.tenant_id == principal.tenant_id)
            )
        ).one_or_none()
    if row is None:
        raise Problem(404, "no such order")
    return _read(row)
