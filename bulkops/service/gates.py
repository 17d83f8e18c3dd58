"""The gate a new operation is created behind: whether it awaits approval (the tenant's policy
against the dry run's prediction), when it may start, and how fast it may go. Written on the
operation's row at create; the workflow's input takes them from that row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bulkops.domain.model import WAITING_STATUSES, OperationStatus
from bulkops.domain.requests import BulkOperationCreate
from bulkops.domain.safety import Actor, Approval, ApprovalStatus, Prediction, TenantPolicy
from bulkops.service.auth import creator_columns
from bulkops.service.dry_run import dry_run
from bulkops.store.tables import TENANTS

# Statuses of an operation that has not started yet (and so may still be forgotten).
WAITING = [s.value for s in WAITING_STATUSES]


async def load_policy(session: AsyncSession, tenant_id: str) -> TenantPolicy:
    raw = await session.scalar(select(TENANTS.c.policy).where(TENANTS.c.id == tenant_id))
    return TenantPolicy.model_validate(raw or {})


async def gate_values(
    sessionmaker: async_sessionmaker, tenant_id: str, body: BulkOperationCreate, actor: Actor
) -> dict[str, Any]:
    """The new row's columns that say what it waits for: approval (with the dry run's prediction),
    its `start_at`, and its pace (its own, or the tenant's default)."""
    async with sessionmaker() as session:
        policy = await load_policy(session, tenant_id)
    values: dict[str, Any] = {
        "status": (OperationStatus.SCHEDULED if body.start_at else OperationStatus.PENDING).value,
        "start_at": body.start_at,
        "max_orders_per_second": body.max_orders_per_second or policy.default_max_orders_per_second,
        **creator_columns(actor),
    }
    if (
        policy.approval_types
        or policy.approval_over_orders is not None
        or policy.approval_over_refund_cents is not None
    ):
        forecast = await dry_run(sessionmaker, tenant_id, body)
        prediction = Prediction.model_validate(forecast.model_dump())
        reasons = policy.approval_reasons(body.operation_type, prediction)
        if reasons:
            values["status"] = OperationStatus.AWAITING_APPROVAL.value
            values["approval"] = Approval(
                reasons=reasons,
                policy=policy.model_dump(mode="json"),
                prediction=prediction,
                requested_by=actor.name,
                expires_at=datetime.now(UTC) + timedelta(seconds=policy.approval_window_s),
            ).model_dump(mode="json")
    return values


def gate_input(row: Any) -> dict[str, Any]:
    """The workflow input's fields that come from the gate columns of the operation's row."""
    approval = Approval.model_validate(row.approval) if row.approval else None
    pending = approval is not None and approval.status is ApprovalStatus.PENDING
    return {
        "start_at": row.start_at,
        "approval_expires_at": approval.expires_at if pending and approval else None,
        "created_by_key_id": str(row.created_by_key_id) if row.created_by_key_id else None,
        "created_by_user_id": str(row.created_by_user_id) if row.created_by_user_id else None,
        "max_orders_per_second": row.max_orders_per_second,
        "revert_of": row.revert_of,
    }
