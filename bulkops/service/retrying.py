"""Retrying an operation's failures: a new operation over exactly the failed orders its lineage has
not dealt with, each order retried at most once at a time and never again once it succeeded.

A lineage is an original and every retry and revert made from it or from them (`lineage_id`, the
root's id): retrying any operation of it selects against all of it. Serialised in the database:
every retry locks the lineage root's row first, so of two requests at once anywhere in one chain
the second sees the first's targets and finds nothing left (409 naming it), and a repeated
`Idempotency-Key` finds the operation the first request made. The new operation passes the tenant's
approval gate on exactly the targets it selected, like a create.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, replace

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bulkops.domain.audit import AuditAction
from bulkops.domain.people import Actor
from bulkops.domain.records import OperationRecord
from bulkops.service.errors import Conflict
from bulkops.service.limits import admit
from bulkops.service.lineage import made_from, new_operation_from
from bulkops.settings import Settings
from bulkops.store.audit import insert_event
from bulkops.store.gating import hold_on_targets
from bulkops.store.operations import insert_operation
from bulkops.store.selection import failed_items, fix_targets, live_in_lineage, retry_targets
from bulkops.store.tables import TARGETS


@dataclass
class RetryRequest:
    tenant_id: str
    original_id: uuid.UUID
    all_failed: bool
    initiated_by: str
    actor: Actor
    idempotency_key: str | None = None

    def digest(self) -> str:
        body = {"retry_of": str(self.original_id), "all_failed": self.all_failed}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


async def insert_retry(
    sessionmaker: async_sessionmaker, settings: Settings, req: RetryRequest
) -> tuple[OperationRecord, bool]:
    """The retry's row and targets, committed; and whether it is new (False: a repeated key)."""

    async def make(session: AsyncSession, original: OperationRecord) -> OperationRecord:
        _check_original(original)
        return await _insert(session, settings, req, original)

    return await made_from(sessionmaker, req, make)


def _check_original(original: OperationRecord) -> None:
    if not original.ended:
        raise Conflict("the operation has not ended yet; retry it once it has")
    if original.revert_of is not None:
        # Its per-order step is the revert's, not the update's parameters: never re-apply those.
        raise Conflict("a revert cannot be retried")


async def _insert(
    session: AsyncSession, settings: Settings, req: RetryRequest, original: OperationRecord
) -> OperationRecord:
    op_id = uuid.uuid4()
    await _check_something_left(session, req, original.lineage_id, op_id)
    await admit(session, req.tenant_id, original.max_concurrency, settings)
    selection = {"retry_of": str(req.original_id), "all_failed": req.all_failed}
    new = replace(new_operation_from(original, req, op_id, selection), retry_of=req.original_id)
    await insert_operation(session, new)
    stmt = retry_targets(op_id, req.original_id, original.lineage_id, req.all_failed)
    await session.execute(insert(TARGETS).from_select(["operation_id", "seq", "order_id"], stmt))
    # Like a create: the tenant's approval policy decides on exactly the orders it will retry.
    row = await hold_on_targets(session, await fix_targets(session, op_id), req.actor.name)
    detail = {"retry": str(op_id), "all_failed": req.all_failed, "total_count": row.total_count}
    await insert_event(session, req.original_id, f"retried:{op_id}", AuditAction.RETRIED, req.actor, detail)
    await insert_event(
        session, op_id, "created", AuditAction.CREATED, req.actor, {"retry_of": str(req.original_id)}
    )
    return row


async def _check_something_left(
    session: AsyncSession, req: RetryRequest, lineage_id: uuid.UUID, op_id: uuid.UUID
) -> None:
    targets = retry_targets(op_id, req.original_id, lineage_id, req.all_failed)
    left = await session.scalar(select(func.count()).select_from(targets.subquery()))
    if left:
        return
    what = "failed" if req.all_failed else "retryable failed"
    if not await session.scalar(
        select(func.count()).select_from(failed_items(req.original_id, req.all_failed).subquery())
    ):
        raise Conflict(f"the operation has no {what} orders to retry")
    live = await session.scalar(live_in_lineage(lineage_id, op_id))
    if live is not None:
        raise Conflict(f"its {what} orders are already being retried by operation {live}")
    raise Conflict(f"its {what} orders were all retried successfully already")
