"""Operations made from another one (retries and reverts): one at a time per lineage, and at most
once per `Idempotency-Key`.

A lineage is an original and every retry and revert made from it or from them; `lineage_id` on each
row is the root's id. Whatever is made from any operation of one lineage is made under a lock on
the root's row, so two requests at once anywhere in one chain are serialised: the second sees what
the first made. A repeated `Idempotency-Key` finds the operation the first request made (200), or
409 when it came with another request.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bulkops.service.errors import Conflict, NotFound
from bulkops.service.starting import by_idempotency_key
from bulkops.store.tables import OPERATIONS, BulkOperation


class MadeFrom(Protocol):
    tenant_id: str
    original_id: uuid.UUID
    idempotency_key: str | None

    def digest(self) -> str: ...


async def made_from(
    sessionmaker: async_sessionmaker,
    req: MadeFrom,
    make: Callable[[AsyncSession, BulkOperation], Awaitable[Any]],
) -> tuple[Any, bool]:
    """`make(session, original)`'s new row, committed under the lineage's lock; and whether it is new
    (False: the operation an earlier request with the same Idempotency-Key made)."""
    try:
        async with sessionmaker() as session, session.begin():
            original = await lock_lineage(session, req.tenant_id, req.original_id)
            if req.idempotency_key:
                existing = await by_idempotency_key(session, req.tenant_id, req.idempotency_key)
                if existing is not None:
                    return replayed(existing, req), False
            return await make(session, original), True
    except IntegrityError:
        # The same key was taken meanwhile by a create (one of ours would have waited for the lock).
        async with sessionmaker() as session:
            existing = await by_idempotency_key(session, req.tenant_id, req.idempotency_key or "")
        if existing is None:
            raise
        return replayed(existing, req), False


async def lock_lineage(session: AsyncSession, tenant_id: str, operation_id: uuid.UUID) -> BulkOperation:
    """The tenant's operation, read after locking its lineage root's row."""
    lineage_id = await session.scalar(
        select(OPERATIONS.c.lineage_id).where(
            OPERATIONS.c.id == operation_id, OPERATIONS.c.tenant_id == tenant_id
        )
    )
    if lineage_id is None:
        raise NotFound
    await session.execute(select(OPERATIONS.c.id).where(OPERATIONS.c.id == lineage_id).with_for_update())
    return (await session.execute(select(BulkOperation).where(BulkOperation.id == operation_id))).scalar_one()


def replayed(existing: BulkOperation, req: MadeFrom) -> BulkOperation:
    if existing.request_hash != req.digest():
        raise Conflict("this Idempotency-Key was already used with a different request")
    return existing
