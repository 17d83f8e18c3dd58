"""Activities that keep the `bulk_operations` row and its targets: snapshot, paging, status, summary.

Each is one short transaction and idempotent, so Temporal may retry any of them freely.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio import activity

from activities.contracts import (
    FETCH_TARGETS,
    FINALIZE_OPERATION,
    RECORD_FAILURE,
    SET_STATUS,
    SNAPSHOT_SELECTION,
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
from activities.orders import outcome_from_row
from bulkops.domain.model import ErrorCode, ItemStatus
from bulkops.domain.requests import OrderFilter
from bulkops.store.selection import filter_targets, retry_targets
from bulkops.store.tables import ITEMS, NOT_TERMINAL, OPERATIONS, TARGETS

OPS = OPERATIONS


class OperationActivities:
    def __init__(self, sessionmaker: async_sessionmaker) -> None:
        self.sessionmaker = sessionmaker

    @activity.defn(name=SNAPSHOT_SELECTION)
    async def snapshot_selection(self, inp: SnapshotInput) -> SnapshotResult:
        async with self.sessionmaker() as session, session.begin():
            op = (
                await session.execute(select(OPS).where(OPS.c.id == inp.operation_id).with_for_update())
            ).one()
            count = await session.scalar(
                select(func.count()).select_from(TARGETS).where(TARGETS.c.operation_id == inp.operation_id)
            )
            # The API writes explicit id lists itself; a filter or a retry is snapshotted here, once.
            if not count and op.selection.get("filter") is not None:
                flt = OrderFilter.model_validate(op.selection["filter"])
                stmt = filter_targets(inp.operation_id, inp.tenant_id, flt)
                await session.execute(insert(TARGETS).from_select(["operation_id", "seq", "order_id"], stmt))
            elif not count and op.selection.get("retry_of") is not None:
                stmt = retry_targets(
                    inp.operation_id, op.selection["retry_of"], bool(op.selection.get("all_failed"))
                )
                await session.execute(insert(TARGETS).from_select(["operation_id", "seq", "order_id"], stmt))
            total = await session.scalar(
                select(func.count()).select_from(TARGETS).where(TARGETS.c.operation_id == inp.operation_id)
            )
            await session.execute(update(OPS).where(OPS.c.id == inp.operation_id).values(total_count=total))
        activity.logger.info("operation %s snapshotted %s targets", inp.operation_id, total)
        return SnapshotResult(total_count=total or 0)

    @activity.defn(name=FETCH_TARGETS)
    async def fetch_targets(self, inp: FetchTargetsInput) -> FetchTargetsResult:
        async with self.sessionmaker() as session:
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
            values["started_at"] = func.coalesce(OPS.c.started_at, inp.started_at)
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(OPS).where(OPS.c.id == inp.operation_id, NOT_TERMINAL).values(**values)
            )

    @activity.defn(name=FINALIZE_OPERATION)
    async def finalize_operation(self, inp: FinalizeInput) -> None:
        # Written once: a retry after a lost acknowledgement finds the row terminal and leaves it.
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(OPS)
                .where(OPS.c.id == inp.operation_id, NOT_TERMINAL)
                .values(
                    status=inp.status.value,
                    # Never below what the row already says (an id list cancelled before its snapshot).
                    total_count=func.greatest(OPS.c.total_count, inp.total_count),
                    processed_count=inp.processed_count,
                    success_count=inp.success_count,
                    failed_count=inp.failed_count,
                    errors=[e.model_dump(mode="json") for e in inp.errors],
                    failure_reason=inp.failure_reason,
                    started_at=func.coalesce(OPS.c.started_at, inp.started_at),
                    completed_at=inp.completed_at,
                )
            )
        activity.logger.info("operation %s ended %s", inp.operation_id, inp.status.value)

    @activity.defn(name=RECORD_FAILURE)
    async def record_failure(self, inp: RecordFailureInput) -> OrderOutcome:
        """The per-order activity gave up: record RETRIES_EXHAUSTED unless an outcome already exists."""
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                pg_insert(ITEMS)
                .values(
                    operation_id=inp.operation_id,
                    order_id=inp.order_id,
                    seq=inp.seq,
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
