"""The `bulk_operations` repository: rows read as typed `OperationRecord`s, new rows written from a
`NewOperation`. Every function runs in the session (and transaction) its caller's use case opened;
none opens its own.

The workflow's activities write the checkpoint and summary columns (`activities.operations`); the
gate's writes are `bulkops.store.gating`'s and the targets' `bulkops.store.selection`'s."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bulkops.domain.model import WAITING_STATUSES, OperationStatus, OperationType, operation_workflow_id
from bulkops.domain.people import Actor
from bulkops.domain.records import OperationRecord
from bulkops.store.records import from_row
from bulkops.store.tables import OPERATIONS

# Rows of operations that have not started yet: what may be forgotten, and what a tenant's waiting
# limit counts.
WAITING = OPERATIONS.c.status.in_(sorted(s.value for s in WAITING_STATUSES))


@dataclass(frozen=True, slots=True, kw_only=True)
class NewOperation:
    """What a create, a retry or a revert writes as a new operation's row."""

    id: uuid.UUID
    tenant_id: str
    operation_type: OperationType
    parameters: dict[str, Any]
    selection: dict[str, Any]
    max_concurrency: int
    failure_threshold: dict[str, Any] | None
    initiated_by: str
    # Who asked for it: their key and their person may then not approve it.
    created_by: Actor
    notify_url: str | None
    idempotency_key: str | None
    request_hash: str
    # Its gate: SCHEDULED until `start_at`, else PENDING (the approval is decided on its targets).
    status: OperationStatus = OperationStatus.PENDING
    start_at: datetime | None = None
    max_orders_per_second: float | None = None
    # An id list's count is known at once; a filter's once its targets are snapshotted.
    total_count: int = 0
    retry_of: uuid.UUID | None = None
    revert_of: uuid.UUID | None = None
    # The root of the chain it is retried or reverted from; None: it is an original, its own root.
    lineage_id: uuid.UUID | None = None


def record(row: Row[Any]) -> OperationRecord:
    """A `bulk_operations` row (every column selected) as its typed record."""
    return from_row(OperationRecord, row, operation_type=OperationType, status=OperationStatus)


def creator_columns(actor: Actor) -> dict[str, Any]:
    """The columns that say who created an operation (and so who may not decide it)."""
    return {
        "created_by_key_id": uuid.UUID(actor.key_id) if actor.key_id else None,
        "created_by_user_id": uuid.UUID(actor.user_id) if actor.user_id else None,
        "created_by": actor.model_dump(mode="json", exclude={"comment"}) if actor.name else None,
    }


async def insert_operation(session: AsyncSession, new: NewOperation) -> OperationRecord:
    row = (
        await session.execute(
            insert(OPERATIONS)
            .values(
                id=new.id,
                tenant_id=new.tenant_id,
                operation_type=new.operation_type.value,
                status=new.status.value,
                parameters=new.parameters,
                selection=new.selection,
                max_concurrency=new.max_concurrency,
                failure_threshold=new.failure_threshold,
                initiated_by=new.initiated_by,
                retry_of=new.retry_of,
                revert_of=new.revert_of,
                lineage_id=new.lineage_id or new.id,
                start_at=new.start_at,
                max_orders_per_second=new.max_orders_per_second,
                notify_url=new.notify_url,
                idempotency_key=new.idempotency_key,
                request_hash=new.request_hash,
                workflow_id=operation_workflow_id(new.id),
                errors=[],
                total_count=new.total_count,
                **creator_columns(new.created_by),
            )
            .returning(OPERATIONS)
        )
    ).one()
    return record(row)


def _of_tenant(tenant_id: str) -> Select[Any]:
    return select(OPERATIONS).where(OPERATIONS.c.tenant_id == tenant_id)


async def get_operation(
    session: AsyncSession, tenant_id: str, operation_id: uuid.UUID
) -> OperationRecord | None:
    """The tenant's operation (None for another tenant's id: it does not exist for this one)."""
    row = (await session.execute(_of_tenant(tenant_id).where(OPERATIONS.c.id == operation_id))).one_or_none()
    return record(row) if row is not None else None


async def operation_by_id(session: AsyncSession, operation_id: uuid.UUID) -> OperationRecord | None:
    """The operation, whoever's it is (for the worker's sweep; the API reads through the tenant)."""
    row = (await session.execute(select(OPERATIONS).where(OPERATIONS.c.id == operation_id))).one_or_none()
    return record(row) if row is not None else None


async def by_idempotency_key(session: AsyncSession, tenant_id: str, key: str) -> OperationRecord | None:
    """The tenant's operation created (or retried, or reverted) with this Idempotency-Key, if any."""
    row = (
        await session.execute(_of_tenant(tenant_id).where(OPERATIONS.c.idempotency_key == key))
    ).one_or_none()
    return record(row) if row is not None else None


async def lineage_of(session: AsyncSession, tenant_id: str, operation_id: uuid.UUID) -> uuid.UUID | None:
    return await session.scalar(
        select(OPERATIONS.c.lineage_id).where(
            OPERATIONS.c.id == operation_id, OPERATIONS.c.tenant_id == tenant_id
        )
    )


async def lock_row(session: AsyncSession, operation_id: uuid.UUID) -> None:
    """Lock the operation's row until the transaction ends (what serialises a lineage)."""
    await session.execute(select(OPERATIONS.c.id).where(OPERATIONS.c.id == operation_id).with_for_update())


async def reverted_by(session: AsyncSession, operation_id: uuid.UUID) -> uuid.UUID | None:
    """The revert made of this operation, if any (there is at most one)."""
    return await session.scalar(select(OPERATIONS.c.id).where(OPERATIONS.c.revert_of == operation_id))


async def remove_unstarted(session: AsyncSession, operation_id: uuid.UUID) -> None:
    """Remove an operation whose workflow never started: only while it still waits, so that a row
    whose workflow did run is never lost. Its targets and audit events go with it (ON DELETE CASCADE)."""
    await session.execute(delete(OPERATIONS).where(OPERATIONS.c.id == operation_id, WAITING))
