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

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bulkops.domain.people import Actor
from bulkops.domain.records import OperationRecord
from bulkops.service.errors import Conflict, NotFound
from bulkops.store.operations import NewOperation, by_idempotency_key, get_operation, lineage_of, lock_row


class MadeFrom(Protocol):
    tenant_id: str
    original_id: uuid.UUID
    initiated_by: str
    actor: Actor
    idempotency_key: str | None

    def digest(self) -> str: ...


def new_operation_from(
    original: OperationRecord, req: MadeFrom, op_id: uuid.UUID, selection: dict[str, Any]
) -> NewOperation:
    """The row of a retry or a revert of `original`: in its lineage, with its type, parameters,
    concurrency, failure threshold, pace and webhook; asked for by the request's person and key."""
    return NewOperation(
        id=op_id,
        tenant_id=req.tenant_id,
        operation_type=original.operation_type,
        parameters=original.parameters,
        selection=selection,
        max_concurrency=original.max_concurrency,
        failure_threshold=original.failure_threshold,
        initiated_by=req.initiated_by,
        created_by=req.actor,
        notify_url=original.notify_url,
        idempotency_key=req.idempotency_key,
        request_hash=req.digest(),
        max_orders_per_second=original.max_orders_per_second,
        lineage_id=original.lineage_id,
    )


async def made_from(
    sessionmaker: async_sessionmaker,
    req: MadeFrom,
    make: Callable[[AsyncSession, OperationRecord], Awaitable[OperationRecord]],
) -> tuple[OperationRecord, bool]:
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


async def lock_lineage(session: AsyncSession, tenant_id: str, operation_id: uuid.UUID) -> OperationRecord:
    """The tenant's operation, read after locking its lineage root's row."""
    lineage_id = await lineage_of(session, tenant_id, operation_id)
    if lineage_id is None:
        raise NotFound
    await lock_row(session, lineage_id)
    original = await get_operation(session, tenant_id, operation_id)
    if original is None:
        raise NotFound
    return original


def replayed(existing: OperationRecord, req: MadeFrom) -> OperationRecord:
    if existing.request_hash != req.digest():
        raise Conflict("this Idempotency-Key was already used with a different request")
    return existing
