"""The service side of safe operations: the tenant's policy, the gate a new operation is created
behind (approval, `start_at`, pace), control actions carrying who asked, reverts, and the audit trail.

Roles are checked at the edge (`api.deps.require_role`); what depends on the operation (the key that
created it, or its person, may not approve it) is checked here, and again by the workflow's update validators.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from bulkops.domain.model import OperationStatus, OperationType
from bulkops.domain.representation import Progress
from bulkops.domain.safety import Actor, AuditAction, AuditEventRead, TenantPolicy, decision_refusal
from bulkops.service import auth
from bulkops.service.errors import Conflict, Forbidden
from bulkops.service.gates import load_policy
from bulkops.service.limits import admit
from bulkops.service.operations import OperationService
from bulkops.service.starting import insert_row
from bulkops.store.audit import insert_event, list_events
from bulkops.store.tables import OPERATIONS, TENANTS
from workflows.contracts import APPROVE_UPDATE, CANCEL_UPDATE, PAUSE_UPDATE, REJECT_UPDATE, RESUME_UPDATE

OPS = OPERATIONS
CONTROLS = {
    "pause": PAUSE_UPDATE,
    "resume": RESUME_UPDATE,
    "cancel": CANCEL_UPDATE,
    "approve": APPROVE_UPDATE,
    "reject": REJECT_UPDATE,
}


class SafetyService:
    def __init__(self, operations: OperationService) -> None:
        self.ops = operations
        self.sessionmaker = operations.sessionmaker

    async def policy(self, tenant_id: str) -> TenantPolicy:
        async with self.sessionmaker() as session:
            return await load_policy(session, tenant_id)

    async def set_policy(self, tenant_id: str, policy: TenantPolicy) -> TenantPolicy:
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(TENANTS).where(TENANTS.c.id == tenant_id).values(policy=policy.model_dump(mode="json"))
            )
        return policy

    async def control(
        self, tenant_id: str, operation_id: uuid.UUID, name: str, actor: Actor
    ) -> tuple[Any, Progress]:
        """pause, resume, cancel, approve or reject, as `actor`: the workflow's update decides (and
        records the audit event); an invalid transition is a `Conflict`."""
        row = await self.ops.get_row(tenant_id, operation_id)
        if OperationStatus(row.status).terminal:
            raise Conflict(f"cannot {name} an operation that has ended ({row.status})")
        if name in ("approve", "reject"):
            if row.approval is None:
                raise Conflict("this operation needs no approval")
            creator_user = str(row.created_by_user_id) if row.created_by_user_id else None
            creator_key = str(row.created_by_key_id) if row.created_by_key_id else None
            refusal = decision_refusal(actor, creator_user, creator_key, name)
            if refusal is not None:
                raise Forbidden(refusal)
        try:
            live = await self.ops.handle(operation_id).execute_update(
                CONTROLS[name], actor, result_type=Progress
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            raise Conflict(getattr(cause, "message", None) or str(cause or exc)) from None
        except RPCError as exc:
            raise Conflict(f"cannot {name} this operation now: {exc.message}") from None
        return await self.ops.get_row(tenant_id, operation_id), live

    async def revert(self, tenant_id: str, original_id: uuid.UUID, actor: Actor, initiated_by: str) -> Any:
        """A new operation that puts back, per order the update succeeded on, the values it recorded."""
        original = await self.ops.get_row(tenant_id, original_id)
        if original.operation_type != OperationType.BULK_UPDATE.value:
            raise Conflict("only a BULK_UPDATE can be reverted")
        if not OperationStatus(original.status).terminal:
            raise Conflict("the operation has not ended yet; revert it once it has")
        new_id = uuid.uuid4()
        try:
            async with self.sessionmaker() as session, session.begin():
                await admit(session, tenant_id, original.max_concurrency, self.ops.settings)
                row = await insert_row(
                    session,
                    new_id,
                    tenant_id,
                    OperationType.BULK_UPDATE,
                    original.parameters,
                    {"revert_of": str(original_id)},
                    original.max_concurrency,
                    None,
                    initiated_by,
                    None,
                    original.notify_url,
                    None,
                    None,
                    extra={
                        "revert_of": original_id,
                        **auth.creator_columns(actor),
                        "max_orders_per_second": original.max_orders_per_second,
                    },
                )
                count = await self._revert_targets(session, new_id, original_id)
                if not count:
                    raise Conflict("nothing to revert: the update changed no order")
                row = (
                    await session.execute(
                        update(OPS).where(OPS.c.id == new_id).values(total_count=count).returning(OPS)
                    )
                ).one()
                await insert_event(
                    session,
                    original_id,
                    f"reverted:{new_id}",
                    AuditAction.REVERTED,
                    actor,
                    {"revert": str(new_id)},
                )
                await insert_event(
                    session,
                    new_id,
                    "created",
                    AuditAction.CREATED,
                    actor,
                    {"revert_of": str(original_id), "total_count": count},
                )
        except IntegrityError:
            async with self.sessionmaker() as session:
                other = await session.scalar(select(OPS.c.id).where(OPS.c.revert_of == original_id))
            raise Conflict(f"this operation was already reverted (by {other})") from None
        await self.ops._start(row, forget_on_failure=True)
        return row

    async def _revert_targets(self, session: AsyncSession, new_id: uuid.UUID, original_id: uuid.UUID) -> int:
        # The orders the update succeeded on and recorded previous values for, in its order.
        result = await session.execute(
            text(
                "INSERT INTO bulk_operation_targets (operation_id, seq, order_id) "
                "SELECT :new, row_number() OVER (ORDER BY seq), order_id FROM bulk_operation_items "
                "WHERE operation_id = :orig AND status = 'SUCCEEDED' AND result -> 'previous' IS NOT NULL"
            ),
            {"new": new_id, "orig": original_id},
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def audit(self, tenant_id: str, operation_id: uuid.UUID) -> list[AuditEventRead]:
        await self.ops.get_row(tenant_id, operation_id)  # another tenant's id: NotFound
        async with self.sessionmaker() as session:
            return await list_events(session, operation_id)
