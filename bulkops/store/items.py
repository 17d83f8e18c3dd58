"""Reads of `bulk_operation_items`, the per-order outcomes, as typed `ItemRecord`s. The activities
write them (`activities.orders`, `activities.operations.record_failure`), one per order and attempt's
transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from bulkops.domain.model import ItemStatus
from bulkops.domain.records import ItemRecord
from bulkops.store.pagination import int32, keyset_page
from bulkops.store.records import from_row
from bulkops.store.tables import ITEMS


def item_record(row: Row[Any]) -> ItemRecord:
    return from_row(ItemRecord, row, status=ItemStatus)


async def page_of_items(
    session: AsyncSession, operation_id: uuid.UUID, status: ItemStatus | None, limit: int, cursor: str | None
) -> tuple[list[ItemRecord], str | None]:
    """One page of the operation's outcomes in selection order (`seq`), after `cursor`."""
    stmt = select(ITEMS).where(ITEMS.c.operation_id == operation_id)
    if status:
        stmt = stmt.where(ITEMS.c.status == status.value)
    rows, next_cursor = await keyset_page(session, stmt, (ITEMS.c.seq,), (int32,), cursor=cursor, limit=limit)
    return [item_record(r) for r in rows], next_cursor
