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
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bulkops.domain.audit import AuditAction
from bulkops.domain.model import OperationType
from bulkops.domain.people import Actor
from bulkops.domain.records import OperationRecord
from bulkops.service.errors import Conflict
from bulkops.service.limits import admit
from bulkops.service.lineage import made_from, new_operation_from
from bulkops.settings import Settings
from bulkops.store.audit import insert_event
from bulkops.store.gating import hold_on_targets
from bulkops.store.operations import insert_operation, reverted_by
from bulkops.store.selection import fix_targets, insert_revert_targets


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
) -> tuple[OperationRecord, bool]:
    """The revert's row and targets, committed; and whether it is new (False: a repeated key)."""

    async def make(session: AsyncSession, original: OperationRecord) -> OperationRecord:
        _check_original(original)
        other = await reverted_by(session, original.id)
        if other is not None:
            raise Conflict(f"this operation was already reverted (by {other})")
        return await _insert(session, settings, req, original)

    return await made_from(sessionmaker, req, make)


def _check_original(original: OperationRecord) -> None:
    if original.operation_type is not OperationType.BULK_UPDATE:
        raise Conflict("only a BULK_UPDATE can be reverted")
    if not original.ended:
        raise Conflict("the operation has not ended yet; revert it once it has")


async def _insert(
    session: AsyncSession, settings: Settings, req: RevertRequest, original: OperationRecord
) -> OperationRecord:
    new_id = uuid.uuid4()
    await admit(session, req.tenant_id, original.max_concurrency, settings)
    # A revert puts back what the update set, without the update's failure threshold.
    base = new_operation_from(original, req, new_id, {"revert_of": str(original.id)})
    await insert_operation(session, replace(base, failure_threshold=None, revert_of=original.id))
    if not await insert_revert_targets(session, new_id, original.id):
        raise Conflict("nothing to revert: the update changed no order")
    row = await hold_on_targets(session, await fix_targets(session, new_id), req.actor.name)
    await insert_event(
        session, original.id, f"reverted:{new_id}", AuditAction.REVERTED, req.actor, {"revert": str(new_id)}
    )
    detail = {"revert_of": str(original.id), "total_count": row.total_count, "status": row.status}
    await insert_event(session, new_id, "created", AuditAction.CREATED, req.actor, detail)
    return row
