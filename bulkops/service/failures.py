"""How an operation's failures split by error code, counted over all its outcome rows (the error
sample on the operation holds at most a hundred)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from bulkops.domain.model import ItemStatus
from bulkops.store.tables import ITEMS


async def failures_by_code(
    sessionmaker: async_sessionmaker, operation_id: uuid.UUID
) -> list[tuple[str, int, int]]:
    """(code, orders, retryable orders) of the operation's failed outcomes, most frequent first. The
    caller has already checked that the operation belongs to the tenant."""
    stmt = (
        select(ITEMS.c.error_code, func.count(), func.count().filter(ITEMS.c.retryable))
        .where(ITEMS.c.operation_id == operation_id, ITEMS.c.status == ItemStatus.FAILED.value)
        .group_by(ITEMS.c.error_code)
        .order_by(func.count().desc(), ITEMS.c.error_code)
    )
    async with sessionmaker() as session:
        rows = (await session.execute(stmt)).all()
    return [(code or "UNKNOWN", int(n), int(r)) for code, n, r in rows]
