"""The gate a new operation is created behind: when it may start, how fast it may go, and whether it
awaits approval. Written on the operation's row; the workflow's input takes them from that row.

The approval decision is made on the targets the run will process (`bulkops.store.gating`): at
create when they are fixed then (an id list, a retry, a revert, and a filter operation that the
forecast holds for approval: its selection is snapshotted at create, and its approver approves
exactly that snapshot), else when the snapshot is taken as the operation starts (a scheduled filter
operation, or one queued behind the tenant's running cap), where it is held for approval then if
the policy says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bulkops.domain.approval import Approval, ApprovalStatus, Prediction
from bulkops.domain.model import OperationStatus
from bulkops.domain.records import OperationRecord
from bulkops.domain.requests import BulkOperationCreate
from bulkops.service.dry_run import dry_run
from bulkops.store.gating import load_policy


@dataclass(frozen=True, slots=True)
class Gate:
    """What a new operation waits for: its first status (SCHEDULED until `start_at`), its pace (its
    own or the tenant's default), and whether its filter is snapshotted now: when the forecast says
    the policy holds it (the approval is then decided on that snapshot)."""

    status: OperationStatus
    start_at: datetime | None
    max_orders_per_second: float | None
    snapshot_now: bool


async def gate_of(session: AsyncSession, tenant_id: str, body: BulkOperationCreate) -> Gate:
    """The gate of a new operation, in the create's transaction."""
    policy = await load_policy(session, tenant_id)
    snapshot_now = False
    if body.filter is not None and body.start_at is None and policy.gates_anything:
        seen = await dry_run(session, tenant_id, body)
        snapshot_now = bool(
            policy.approval_reasons(body.operation_type, Prediction.model_validate(seen.model_dump()))
        )
    return Gate(
        status=OperationStatus.SCHEDULED if body.start_at else OperationStatus.PENDING,
        start_at=body.start_at,
        max_orders_per_second=body.max_orders_per_second or policy.default_max_orders_per_second,
        snapshot_now=snapshot_now,
    )


def gate_input(row: OperationRecord) -> dict[str, Any]:
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
