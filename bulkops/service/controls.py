"""Controlling operations: the tenant's policy, the gate a new operation is created
behind (approval, `start_at`, pace), control actions carrying who asked, reverts, and the audit trail.

Roles are checked at the edge (`api.deps.require_role`); what depends on the operation (the key that
created it, or its person, may not approve it) is checked here, and again by the workflow's update validators.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import update
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from bulkops.domain.approval import TenantPolicy, decision_refusal
from bulkops.domain.audit import AuditEventRead
from bulkops.domain.people import Actor
from bulkops.domain.records import OperationRecord
from bulkops.domain.views import Progress
from bulkops.service.errors import Conflict, Forbidden, Unavailable, is_outage
from bulkops.service.limits import check_ceilings
from bulkops.service.operations import OperationService
from bulkops.service.reverting import RevertRequest, insert_revert
from bulkops.store.audit import list_events
from bulkops.store.gating import load_policy
from bulkops.store.tables import TENANTS
from workflows.contracts import APPROVE_UPDATE, CANCEL_UPDATE, PAUSE_UPDATE, REJECT_UPDATE, RESUME_UPDATE

CONTROLS = {
    "pause": PAUSE_UPDATE,
    "resume": RESUME_UPDATE,
    "cancel": CANCEL_UPDATE,
    "approve": APPROVE_UPDATE,
    "reject": REJECT_UPDATE,
}


class ControlService:
    def __init__(self, operations: OperationService) -> None:
        self.ops = operations
        self.sessionmaker = operations.sessionmaker

    async def policy(self, tenant_id: str) -> TenantPolicy:
        async with self.sessionmaker() as session:
            return await load_policy(session, tenant_id)

    async def set_policy(self, tenant_id: str, policy: TenantPolicy) -> TenantPolicy:
        check_ceilings(policy, self.ops.settings)
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(TENANTS).where(TENANTS.c.id == tenant_id).values(policy=policy.model_dump(mode="json"))
            )
        return policy

    async def control(
        self, tenant_id: str, operation_id: uuid.UUID, name: str, actor: Actor
    ) -> tuple[OperationRecord, Progress]:
        """pause, resume, cancel, approve or reject, as `actor`: the workflow's update decides (and
        records the audit event); an invalid transition is a `Conflict`."""
        row = await self.ops.get_row(tenant_id, operation_id)
        if row.ended:
            raise Conflict(f"cannot {name} an operation that has ended ({row.status})")
        if name in ("approve", "reject"):
            if row.approval is None:
                raise Conflict("this operation needs no approval")
            creator_user = str(row.created_by_user_id) if row.created_by_user_id else None
            creator_key = str(row.created_by_key_id) if row.created_by_key_id else None
            refusal = decision_refusal(actor, creator_user, creator_key, name)
            if refusal is not None:
                raise Forbidden(refusal)
        wait = self.ops.settings.control_timeout_s
        try:
            # The client retries while Temporal is away: bound the whole call, not each attempt.
            async with asyncio.timeout(wait):
                live = await self.ops.handle(operation_id).execute_update(
                    CONTROLS[name], actor, result_type=Progress, rpc_timeout=timedelta(seconds=wait)
                )
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
            raise Unavailable(f"cannot {name} this operation now: no answer within {wait:g} s") from exc
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            raise Conflict(getattr(cause, "message", None) or str(cause or exc)) from None
        except RPCError as exc:
            if is_outage(exc):
                raise Unavailable(f"cannot {name} this operation now: {exc.message}") from exc
            raise Conflict(f"cannot {name} this operation now: {exc.message}") from None
        self.ops.reads.controlled(operation_id, live)
        return await self.ops.get_row(tenant_id, operation_id), live

    async def revert(
        self,
        tenant_id: str,
        original_id: uuid.UUID,
        actor: Actor,
        initiated_by: str,
        idempotency_key: str | None = None,
    ) -> tuple[OperationRecord, bool]:
        """A new operation that puts back, per order the update succeeded on, the values it recorded;
        and whether it is new (False: an earlier request with the same Idempotency-Key made it)."""
        req = RevertRequest(tenant_id, original_id, initiated_by, actor, idempotency_key)
        row, created = await insert_revert(self.sessionmaker, self.ops.settings, req)
        accepted = await self.ops.start_accepted(row, created=created)
        return accepted.row, accepted.created

    async def audit(self, tenant_id: str, operation_id: uuid.UUID) -> list[AuditEventRead]:
        await self.ops.get_row(tenant_id, operation_id)  # another tenant's id: NotFound
        async with self.sessionmaker() as session:
            return await list_events(session, operation_id)
