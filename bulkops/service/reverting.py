"""Reverting an ended `BULK_UPDATE`: a new operation (`revert_of`) over exactly the orders the update
succeeded on and recorded previous values for, which puts those values back.

Made like a retry (`bulkops.service.lineage`): in the update's lineage, under its root's lock, at
most once per `Idempotency-Key`, and gated by the tenant's approval policy on exactly its targets.
An operation is reverted at most once (409 afterwards).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bulkops.domain.model import OperationStatus, OperationType
from bulkops.domain.safety import Actor, AuditAction
from bulkops.service.auth import creator_columns
from bulkops.service.errors import Conflict
from bulkops.service.limits import admit
from bulkops.service.lineage import made_from
from bulkops.service.starting import insert_row
from bulkops.settings import Settings
from bulkops.store.audit import insert_event
from bulkops.store.gating import hold_on_targets
from bulkops.store.selection import fix_targets
from bulkops.store.tables import OPERATIONS, BulkOperation


@dataclass
class RevertRequest:
    tenant_id: str
    original_id: uuid.UUID
    initiated_by: str
    actor: Actor
    idempotency_key: str | None = None

    def digest(self) -> str:
        body = {"revert_of": str(self.original_id)}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


async def insert_revert(
    sessionmaker: async_sessionmaker, settings: Settings, req: RevertRequest
) -> tuple[Any, bool]:
    """The revert's row and targets, committed; and whether it is new (False: a repeated key)."""

    async def make(session: AsyncSession, original: BulkOperation) -> Any:
        _check_original(original)
        other = await session.scalar(select(OPERATIONS.c.id).where(OPERATIONS.c.revert_of == original.id))
        if other is not None:
            raise Conflict(f"this operation was already reverted (by {other})")
        return await _insert(session, settings, req, original)

    return await made_from(sessionmaker, req, make)


def _check_original(original: Any) -> None:
    if original.operation_type != OperationType.BULK_UPDATE.value:
        raise Conflict("only a BULK_UPDATE can be reverted")
    if not OperationStatus(original.status).terminal:
        raise Conflict("the operation has not ended yet; revert it once it has")


async def _insert(session: AsyncSession, settings: Settings, req: RevertRequest, original: Any) -> Any:
    new_id = uuid.uuid4()
    await admit(session, req.tenant_id, original.max_concurrency, settings)
    await insert_row(
        session,
        new_id,
        req.tenant_id,
        OperationType.BULK_UPDATE,
        original.parameters,
        {"revert_of": str(original.id)},
        original.max_concurrency,
        None,
        req.initiated_by,
        None,
        original.notify_url,
        req.idempotency_key,
        req.digest(),
        lineage_id=original.lineage_id,
        extra={
            "revert_of": original.id,
            **creator_columns(req.actor),
            "max_orders_per_second": original.max_orders_per_second,
        },
    )
    # The orders the update succeeded on and recorded previous values for, in its order.
    added = await session.execute(
        text(
            "INSERT INTO bulk_operation_targets (operation_id, seq, order_id) "
            "SELECT :new, row_number() OVER (ORDER BY seq), order_id FROM bulk_operation_items "
            "WHERE operation_id = :orig AND status = 'SUCCEEDED' AND result -> 'previous' IS NOT NULL"
        ),
        {"new": new_id, "orig": original.id},
    )
    if not added.rowcount:  # type: ignore[attr-defined]
        raise Conflict("nothing to revert: the update changed no order")
    row = await hold_on_targets(session, await fix_targets(session, new_id), req.actor.name)
    await insert_event(
        session, original.id, f"reverted:{new_id}", AuditAction.REVERTED, req.actor, {"revert": str(new_id)}
    )
    detail = {"revert_of": str(original.id), "total_count": row.total_count, "status": row.status}
    await insert_event(session, new_id, "created", AuditAction.CREATED, req.actor, detail)
    return row
