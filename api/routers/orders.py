"""`/v1/orders`: create (up to 1,000 at once) and read the tenant's orders."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import OperatorDep, OrdersDep, PrincipalDep
from api.schemas import OrderPage, OrderRead
from bulkops.domain.model import OrderStatus
from bulkops.domain.requests import OrdersCreate

router = APIRouter(prefix="/v1/orders", tags=["orders"])


def _read(row: object) -> OrderRead:
    return OrderRead.model_validate(row, from_attributes=True)


@router.post("", name="create", status_code=201, response_model=list[OrderRead])
async def create_orders(body: OrdersCreate, principal: OperatorDep, orders: OrdersDep) -> list[OrderRead]:
    return [_read(r) for r in await orders.create(principal.tenant_id, body)]


@router.get("", name="list", response_model=OrderPage)
async def list_orders(
    principal: PrincipalDep,
    orders: OrdersDep,
    status: OrderStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> OrderPage:
    rows, next_cursor = await orders.list(principal.tenant_id, status=status, limit=limit, cursor=cursor)
    return OrderPage(items=[_read(r) for r in rows], next_cursor=next_cursor)


@router.get("/{order_id}", name="get", response_model=OrderRead)
async def get_order(order_id: uuid.UUID, principal: PrincipalDep, orders: OrdersDep) -> OrderRead:
    return _read(await orders.get(principal.tenant_id, order_id))
