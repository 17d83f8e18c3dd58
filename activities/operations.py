"""Activities that keep the `bulk_operations` row and its targets: snapshot, paging, status, summary.

Each is one short transaction and idempotent, so Temporal may retry any of them freely.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.authority import Operation, load, refused
from activities.contracts import (
    FETCH_TARGETS,
    FINALIZE_OPERATION,
    RECORD_FAILURE,
    SET_STATUS,
    SNAPSHOT_SELECTION,
    Checkpoint,
    FetchTargetsInput,
    FetchTargetsResult,
    FinalizeInput,
    OrderOutcome,
    RecordFailureInput,
    SetStatusInput,
    SnapshotInput,
    SnapshotResult,
    Target,
)
from activities.liveness import heartbeating
from activities.orders import outcome_from_row
from bulkops.domain.approval import Approval, ApprovalStatus
from bulkops.domain.model import MAX_ERROR_SAMPLE, ErrorCode, ErrorSample, ItemStatus, OperationStatus
from bulkops.store.gating import hold_on_targets
from bulkops.store.operations import record
from bulkops.store.selection import snapshot
from bulkops.store.tables import ITEMS, NOT_TERMINAL, OPERATIONS, TARGETS


async def write_checkpoint(session: AsyncSession, operation_id: uuid.UUID, cp: Checkpoint) -> None:
    """The workflow's counters onto the row, for readers while its query cannot answer. Never
    backwards: an older checkpoint (a retried attempt overtaken by a newer one) changes nothing."""
    await session.execute(
        update(OPERATIONS)
        .where(
            OPERATIONS.c.id == operation_id, NOT_TERMINAL, OPERATIONS.c.processed_count <= cp.processed_count
        )
        .values(
            processed_count=cp.processed_count,
            success_count=cp.success_count,
            failed_count=cp.failed_count,
            errors=[e.model_dump(mode="json") for e in cp.errors],
            progress_at=cp.at,
        )
    )


class OperationActivities:
    def __init__(self, sessionmaker: async_sessionmaker) -> None:
        self.sessionmaker = sessionmaker

    @activity.defn(name=SNAPSHOT_SELECTION)
    async def snapshot_selection(self, inp: SnapshotInput) -> SnapshotResult:
        """The selection snapshotted once (a filter is evaluated now unless its targets were fixed at
        create), and the tenant's approval gate on exactly that snapshot when no gate has decided on
        it yet: a held operation answers when its approval expires. Idempotent: a retried attempt
        finds the snapshot and the approval the first one wrote."""
        async with heartbeating(), self.sessionmaker() as session, session.begin():
            found = (
                await session.execute(
                    select(OPERATIONS).where(OPERATIONS.c.id == inp.operation_id).with_for_update()
                )
            ).one_or_none()
            Operation.of(inp.operation_id, found).verify(
                tenant_id=inp.tenant_id, operation_type=inp.operation_type, parameters=inp.parameters
            )
            assert found is not None  # verified: a missing row is refused
            row = record(found)
            if row.selected_at is None:
                row = await snapshot(session, row)
                if row.approval is None:
                    row = await hold_on_targets(session, row, row.initiated_by)
        approval = Approval.model_validate(row.approval) if row.approval else None
        held = approval.expires_at if approval and approval.status is ApprovalStatus.PENDING else None
        activity.logger.info("operation %s snapshotted %s targets", inp.operation_id, row.total_count)
        return SnapshotResult(total_count=row.total_count, approval_expires_at=held)

    @activity.defn(name=FETCH_TARGETS)
    async def fetch_targets(self, inp: FetchTargetsInput) -> FetchTargetsResult:
        async with self.sessionmaker() as session, session.begin():
            (await load(session, inp.operation_id)).verify(open_only=False)
            if inp.checkpoint is not None:
                await write_checkpoint(session, inp.operation_id, inp.checkpoint)
            rows = (
                await session.execute(
                    select(TARGETS.c.seq, TARGETS.c.order_id)
                    .where(TARGETS.c.operation_id == inp.operation_id, TARGETS.c.seq > inp.after_seq)
                    .order_by(TARGETS.c.seq)
                    .limit(inp.limit)
                )
            ).all()
        return FetchTargetsResult(targets=[Target(seq=r.seq, order_id=r.order_id) for r in rows])

    @activity.defn(name=SET_STATUS)
    async def set_status(self, inp: SetStatusInput) -> None:
        values: dict[str, object] = {"status": inp.status.value}
        if inp.started_at is not None:
            values["started_at"] = func.coalesce(OPERATIONS.c.started_at, inp.started_at)
        async with self.sessionmaker() as session, session.begin():
            (await load(session, inp.operation_id)).verify(open_only=False)
            await session.execute(
                update(OPERATIONS).where(OPERATIONS.c.id == inp.operation_id, NOT_TERMINAL).values(**values)
            )
            if inp.checkpoint is not None:
                await write_checkpoint(session, inp.operation_id, inp.checkpoint)

    @activity.defn(name=FINALIZE_OPERATION)
    async def finalize_operation(self, inp: FinalizeInput) -> None:
        # Written once: a retry after a lost acknowledgement finds the row terminal and leaves it.
        async with self.sessionmaker() as session, session.begin():
            (await load(session, inp.operation_id)).verify(open_only=False)
            await session.execute(
                update(OPERATIONS)
                .where(OPERATIONS.c.id == inp.operation_id, NOT_TERMINAL)
                .values(
                    status=inp.status.value,
                    # Never below what the row already says (an id list cancelled before its snapshot).
                    total_count=func.greatest(OPERATIONS.c.total_count, inp.total_count),
                    processed_count=inp.processed_count,
                    success_count=inp.success_count,
                    failed_count=inp.failed_count,
                    errors=[e.model_dump(mode="json") for e in inp.errors],
                    failure_reason=inp.failure_reason,
                    started_at=func.coalesce(OPERATIONS.c.started_at, inp.started_at),
                    completed_at=inp.completed_at,
                    progress_at=inp.completed_at,
                )
            )
        activity.logger.info("operation %s ended %s", inp.operation_id, inp.status.value)

    @activity.defn(name=RECORD_FAILURE)
    async def record_failure(self, inp: RecordFailureInput) -> OrderOutcome:
        """The per-order activity gave up: record RETRIES_EXHAUSTED unless an outcome already exists."""
        async with self.sessionmaker() as session, session.begin():
            (await load(session, inp.operation_id)).verify()
            seq = await session.scalar(
                select(TARGETS.c.seq).where(
                    TARGETS.c.operation_id == inp.operation_id, TARGETS.c.order_id == inp.order_id
                )
            )
            if seq is None:
                raise refused(inp.operation_id, f"order {inp.order_id} is not in its selection")
            await session.execute(
                pg_insert(ITEMS)
                .values(
                    operation_id=inp.operation_id,
                    order_id=inp.order_id,
                    seq=seq,
                    status=ItemStatus.FAILED.value,
                    error_code=ErrorCode.RETRIES_EXHAUSTED.value,
                    error_message=inp.message[:500],
                    retryable=True,
                    processed_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing(index_elements=["operation_id", "order_id"])
            )
            row = (
                await session.execute(
                    select(ITEMS).where(
                        ITEMS.c.operation_id == inp.operation_id, ITEMS.c.order_id == inp.order_id
                    )
                )
            ).one()
        return outcome_from_row(row)


async def close_from_outcomes(
    sessionmaker: async_sessionmaker, operation_id: uuid.UUID, reason: str, closed_at: datetime
) -> bool:
    """Close the row of an operation whose workflow was closed from outside (no summary will come from
    it) as CANCELLED, its counts from the outcome rows — exact, since each order committed its outcome
    with its effect. Written once: a row that ended meanwhile is left alone. True if it closed it."""
    async with sessionmaker() as session, session.begin():
        processed, succeeded = (
            await session.execute(
                select(func.count(), func.count().filter(ITEMS.c.status == ItemStatus.SUCCEEDED.value)).where(
                    ITEMS.c.operation_id == operation_id
                )
            )
        ).one()
        failed_rows = (
            await session.execute(
                select(ITEMS.c.order_id, ITEMS.c.error_code, ITEMS.c.error_message, ITEMS.c.retryable)
                .where(ITEMS.c.operation_id == operation_id, ITEMS.c.status == ItemStatus.FAILED.value)
                .order_by(ITEMS.c.seq)
                .limit(MAX_ERROR_SAMPLE)
            )
        ).all()
        errors = [
            ErrorSample(
                order_id=r.order_id, code=r.error_code, message=r.error_message or "", retryable=r.retryable
            ).model_dump(mode="json")
            for r in failed_rows
        ]
        closed = await session.execute(
            update(OPERATIONS)
            .where(OPERATIONS.c.id == operation_id, NOT_TERMINAL)
            .values(
                status=OperationStatus.CANCELLED.value,
                processed_count=processed,
                success_count=succeeded,
                failed_count=processed - succeeded,
                errors=errors,
                failure_reason=reason,
                completed_at=closed_at,
                progress_at=closed_at,
            )
        )
    return bool(closed.rowcount)
