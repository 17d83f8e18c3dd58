"""Reads of a tenant's operations, their per-order outcomes and an export's kept rows.

Plain reads of PostgreSQL, each in its own short session: listing needs no Temporal call.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from bulkops.domain.model import ItemStatus, OperationStatus, OperationType
from bulkops.domain.records import ItemRecord, OperationRecord
from bulkops.store.items import page_of_items
from bulkops.store.operations import record
from bulkops.store.pagination import int32, keyset_page
from bulkops.store.tables import ITEMS, OPERATIONS

EXPORT_PAGE = 1000


async def list_operations(
    sessionmaker: async_sessionmaker,
    tenant_id: str,
    *,
    status: OperationStatus | None,
    operation_type: OperationType | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[OperationRecord], str | None]:
    """Newest first."""
    stmt = select(OPERATIONS).where(OPERATIONS.c.tenant_id == tenant_id)
    if status:
        stmt = stmt.where(OPERATIONS.c.status == status.value)
    if operation_type:
        stmt = stmt.where(OPERATIONS.c.operation_type == operation_type.value)
    keys = (OPERATIONS.c.created_at, OPERATIONS.c.id)
    async with sessionmaker() as session:
        rows, next_cursor = await keyset_page(
            session,
            stmt,
            keys,
            (datetime.fromisoformat, uuid.UUID),
            cursor=cursor,
            limit=limit,
            descending=True,
        )
    return [record(r) for r in rows], next_cursor


async def list_items(
    sessionmaker: async_sessionmaker,
    operation_id: uuid.UUID,
    *,
    status: ItemStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[ItemRecord], str | None]:
    """In selection order (`seq`)."""
    async with sessionmaker() as session:
        return await page_of_items(session, operation_id, status, limit, cursor)


async def export_rows(
    sessionmaker: async_sessionmaker, operation_id: uuid.UUID
) -> AsyncIterator[list[dict[str, Any]]]:
    """The rows a `BULK_EXPORT` kept, in selection order, in pages: each page is read in its own short
    session, so memory stays flat and no connection is held while a slow client drains the download."""
    stmt = select(ITEMS.c.seq, ITEMS.c.result).where(
        ITEMS.c.operation_id == operation_id, ITEMS.c.status == ItemStatus.SUCCEEDED.value
    )
    cursor: str | None = None
    while True:
        async with sessionmaker() as session:
            rows, cursor = await keyset_page(
                session, stmt, (ITEMS.c.seq,), (int32,), cursor=cursor, limit=EXPORT_PAGE
            )
        if rows:
            yield [r.result or {} for r in rows]
        if cursor is None:
            return
