"""Turn a stored selection into SQL: one INSERT … SELECT per snapshot, however large the selection."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, insert, literal, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bulkops.domain.model import ItemStatus
from bulkops.domain.records import OperationRecord
from bulkops.domain.requests import OrderFilter
from bulkops.store.operations import record
from bulkops.store.tables import ITEMS, NOT_TERMINAL, OPERATIONS, ORDERS, TARGETS, not_terminal


def filter_clause(tenant_id: str, flt: OrderFilter) -> ColumnElement[bool]:
    conds = [ORDERS.c.tenant_id == tenant_id]
    if flt.statuses:
        conds.append(ORDERS.c.status.in_([s.value for s in flt.statuses]))
    if flt.created_from:
        conds.append(ORDERS.c.created_at >= flt.created_from)
    if flt.created_to:
        conds.append(ORDERS.c.created_at < flt.created_to)
    if flt.tags_any:
        conds.append(ORDERS.c.tags.overlap(flt.tags_any))
    if flt.customer_email:
        conds.append(func.lower(ORDERS.c.customer_email) == flt.customer_email.lower())
    return and_(*conds)


def filter_targets(operation_id: uuid.UUID, tenant_id: str, flt: OrderFilter) -> Select[Any]:
    """(operation_id, seq, order_id) rows in a stable order: oldest first."""
    return select(
        literal(operation_id).label("operation_id"),
        func.row_number().over(order_by=(ORDERS.c.created_at, ORDERS.c.id)).label("seq"),
        ORDERS.c.id,
    ).where(filter_clause(tenant_id, flt))


async def insert_ids(session: AsyncSession, operation_id: uuid.UUID, ids: list[uuid.UUID]) -> None:
    """An id list's targets, in its order. One statement for up to 10,000 ids: unnest the array, its
    ordinality is the sequence."""
    await session.execute(
        text(
            "INSERT INTO bulk_operation_targets (operation_id, seq, order_id) "
            "SELECT :op, t.ord, t.id FROM unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS t(id, ord)"
        ),
        {"op": operation_id, "ids": ids},
    )


async def insert_revert_targets(session: AsyncSession, operation_id: uuid.UUID, update_id: uuid.UUID) -> int:
    """A revert's targets: the orders the update succeeded on and recorded previous values for, in
    its order. Returns how many."""
    added = await session.execute(
        text(
            "INSERT INTO bulk_operation_targets (operation_id, seq, order_id) "
            "SELECT :new, row_number() OVER (ORDER BY seq), order_id FROM bulk_operation_items "
            "WHERE operation_id = :orig AND status = 'SUCCEEDED' AND result -> 'previous' IS NOT NULL"
        ),
        {"new": operation_id, "orig": update_id},
    )
    return int(added.rowcount)  # type: ignore[attr-defined]


async def fix_targets(session: AsyncSession, operation_id: uuid.UUID) -> OperationRecord:
    """Stamp the operation's snapshotted targets as its selection (`selected_at`, `total_count`): from
    now on its selection is exactly these rows. Returns the row."""
    total = select(func.count()).select_from(TARGETS).where(TARGETS.c.operation_id == operation_id)
    row = (
        await session.execute(
            update(OPERATIONS)
            .where(OPERATIONS.c.id == operation_id)
            .values(total_count=total.scalar_subquery(), selected_at=func.now())
            .returning(OPERATIONS)
        )
    ).one()
    return record(row)


async def snapshot(session: AsyncSession, row: OperationRecord) -> OperationRecord:
    """The operation's selection snapshotted into its targets, once: a filter is evaluated now unless
    it was already (an id list's targets were written with its row). Returns the row."""
    if row.selected_at is not None:
        return row
    if row.selection.get("filter") is not None:
        stmt = filter_targets(row.id, row.tenant_id, OrderFilter.model_validate(row.selection["filter"]))
        await session.execute(insert(TARGETS).from_select(["operation_id", "seq", "order_id"], stmt))
    return await fix_targets(session, row.id)


def _failed(original_id: uuid.UUID, all_failed: bool) -> ColumnElement[bool]:
    """The original's failed outcomes a retry may take: the retryable ones, or all with `all_failed`."""
    conds = [ITEMS.c.operation_id == original_id, ITEMS.c.status == ItemStatus.FAILED.value]
    if not all_failed:
        conds.append(ITEMS.c.retryable.is_(True))
    return and_(*conds)


def failed_items(original_id: uuid.UUID, all_failed: bool) -> Select[Any]:
    return select(ITEMS.c.order_id, ITEMS.c.seq).where(_failed(original_id, all_failed))


def retry_targets(
    operation_id: uuid.UUID, original_id: uuid.UUID, lineage_id: uuid.UUID, all_failed: bool
) -> Select[Any]:
    """(operation_id, seq, order_id) of the original's failures that its lineage (the chain of
    retries from one root) has not dealt with: no operation of it succeeded on the order, and none
    that has not ended targets it."""
    return select(
        literal(operation_id).label("operation_id"),
        func.row_number().over(order_by=ITEMS.c.seq).label("seq"),
        ITEMS.c.order_id,
    ).where(_failed(original_id, all_failed), ~_dealt_with(operation_id, lineage_id))


def _dealt_with(operation_id: uuid.UUID, lineage_id: uuid.UUID) -> ColumnElement[bool]:
    other, done = OPERATIONS.alias("lineage_op"), ITEMS.alias("lineage_outcome")
    succeeded = (
        select(done.c.order_id)
        .join(other, other.c.id == done.c.operation_id)
        .where(
            other.c.lineage_id == lineage_id,
            done.c.order_id == ITEMS.c.order_id,
            done.c.status == ItemStatus.SUCCEEDED.value,
        )
        .exists()
    )
    live = (
        select(TARGETS.c.order_id)
        .join(other, other.c.id == TARGETS.c.operation_id)
        .where(
            other.c.lineage_id == lineage_id,
            other.c.id != operation_id,
            TARGETS.c.order_id == ITEMS.c.order_id,
            not_terminal(other),
        )
        .exists()
    )
    return or_(succeeded, live)


def live_in_lineage(lineage_id: uuid.UUID, but: uuid.UUID) -> Select[Any]:
    """The lineage's operations that have not ended (other than `but`), oldest first."""
    return (
        select(OPERATIONS.c.id)
        .where(OPERATIONS.c.lineage_id == lineage_id, OPERATIONS.c.id != but, NOT_TERMINAL)
        .order_by(OPERATIONS.c.created_at)
    )
