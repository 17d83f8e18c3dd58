"""The approval gate's SQL: the tenant's policy, the forecast of what an operation would do (the dry
run, over a filter, an id list or an operation's own snapshotted targets), and holding an operation
whose snapshot the policy says needs a second person.

Every path that makes an operation (create, retry, revert, and the start of one whose selection is
evaluated late) decides here, on the targets the run will process: what the approver sees is what
runs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bulkops.domain.approval import Prediction, TenantPolicy
from bulkops.domain.model import OperationStatus, OperationType
from bulkops.domain.records import OperationRecord
from bulkops.domain.rules import rule_sql
from bulkops.domain.views import DryRunRead
from bulkops.store.operations import record
from bulkops.store.tables import OPERATIONS, ORDERS, TARGETS, TENANTS

SAMPLE = 10


async def load_policy(session: AsyncSession, tenant_id: str) -> TenantPolicy:
    raw = await session.scalar(select(TENANTS.c.policy).where(TENANTS.c.id == tenant_id))
    return TenantPolicy.model_validate(raw or {})


def targets_of(operation_id: uuid.UUID) -> ColumnElement[bool]:
    """Orders in an operation's snapshotted targets."""
    return ORDERS.c.id.in_(select(TARGETS.c.order_id).where(TARGETS.c.operation_id == operation_id))


async def forecast(
    session: AsyncSession,
    tenant_id: str,
    operation_type: OperationType,
    parameters: dict[str, Any],
    where: ColumnElement[bool],
    listed: int | None = None,
) -> DryRunRead:
    """What an operation over the tenant's orders matching `where` would do: matched orders, would-fail
    counts by code, the refund total, a sample. `listed`: the number of ids asked for, when the
    selection is a list (ids of no order of this tenant would fail ORDER_NOT_FOUND)."""
    code = rule_sql(operation_type, parameters, ORDERS).label("code")
    # What each order would be refunded (summed over the orders that would succeed).
    amount = parameters.get("amount_cents")
    refund: ColumnElement[int] = literal(0)
    if operation_type is OperationType.BULK_REFUND:
        refund = literal(amount) if amount else ORDERS.c.total_cents - ORDERS.c.refunded_cents
    mine = [ORDERS.c.tenant_id == tenant_id, where]
    groups = (
        await session.execute(
            select(code, func.count(), func.coalesce(func.sum(refund), 0))
            .where(*mine)
            .group_by(literal_column("code"))
        )
    ).all()
    sample_rows = (
        await session.execute(
            select(ORDERS.c.id, ORDERS.c.status, ORDERS.c.total_cents, ORDERS.c.refunded_cents, code)
            .where(*mine)
            .order_by(ORDERS.c.created_at, ORDERS.c.id)
            .limit(SAMPLE)
        )
    ).all()
    by_code = {c: n for c, n, _ in groups if c is not None}
    found = sum(n for _, n, _ in groups)
    matched = listed if listed is not None else found
    if matched > found:
        by_code["ORDER_NOT_FOUND"] = matched - found
    return DryRunRead(
        operation_type=operation_type,
        matched_count=matched,
        would_fail_count=sum(by_code.values()),
        would_fail_by_code=by_code,
        predicted_refund_cents=sum(int(cents) for c, _, cents in groups if c is None),
        sample=[
            {
                "order_id": str(r.id),
                "status": r.status,
                "total_cents": r.total_cents,
                "refunded_cents": r.refunded_cents,
                "would_fail": r.code,
            }
            for r in sample_rows
        ],
    )


async def hold_on_targets(
    session: AsyncSession, row: OperationRecord, requested_by: str | None
) -> OperationRecord:
    """The operation's row after the gate looked at its snapshotted targets: AWAITING_APPROVAL with
    the approval (reasons, prediction over exactly those targets) if the tenant's policy says so,
    else unchanged. In the caller's transaction."""
    policy = await load_policy(session, row.tenant_id)
    if not policy.gates_anything:
        return row
    listed = await session.scalar(
        select(func.count()).select_from(TARGETS).where(TARGETS.c.operation_id == row.id)
    )
    op_type = row.operation_type
    seen = await forecast(session, row.tenant_id, op_type, row.parameters, targets_of(row.id), listed)
    prediction = Prediction.model_validate(seen.model_dump())
    approval = policy.approval_for(op_type, prediction, requested_by, datetime.now(UTC))
    if approval is None:
        return row
    held = (
        await session.execute(
            update(OPERATIONS)
            .where(OPERATIONS.c.id == row.id)
            .values(status=OperationStatus.AWAITING_APPROVAL.value, approval=approval.model_dump(mode="json"))
            .returning(OPERATIONS)
        )
    ).one()
    return record(held)
