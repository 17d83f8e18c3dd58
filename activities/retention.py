"""Retention: delete the targets, outcome items and exported rows of operations that ended more than
`BULKOPS_RETENTION_DAYS` ago, in bounded batches. The summary row (`bulk_operations`) and the audit
trail (`bulk_operation_events`) stay; refunds are the orders' own records and stay too.

One short transaction per call: it takes the oldest such operation (skipping one another sweep
holds), deletes at most `batch_rows` of its items and then of its targets, and marks it purged once
both are gone. Exported rows live in the items (`result`), so they go with them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio import activity

from activities.contracts import PURGE_EXPIRED, PurgeInput, PurgeResult
from bulkops.domain.model import TERMINAL_STATUSES
from bulkops.settings import Settings
from bulkops.store.tables import ITEMS, OPERATIONS, TARGETS


class RetentionActivities:
    def __init__(self, sessionmaker: async_sessionmaker, settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings

    @activity.defn(name=PURGE_EXPIRED)
    async def purge_expired(self, inp: PurgeInput) -> PurgeResult:
        cutoff = datetime.now(UTC) - timedelta(days=self.settings.retention_days)
        async with self.sessionmaker() as session, session.begin():
            op_id = await session.scalar(
                select(OPERATIONS.c.id)
                .where(
                    OPERATIONS.c.purged_at.is_(None),
                    OPERATIONS.c.completed_at < cutoff,
                    OPERATIONS.c.status.in_([s.value for s in TERMINAL_STATUSES]),
                )
                .order_by(OPERATIONS.c.completed_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if op_id is None:
                return PurgeResult(done=True)
            items = (
                await session.execute(
                    delete(ITEMS).where(
                        tuple_(ITEMS.c.operation_id, ITEMS.c.order_id).in_(
                            select(ITEMS.c.operation_id, ITEMS.c.order_id)
                            .where(ITEMS.c.operation_id == op_id)
                            .limit(inp.batch_rows)
                        )
                    )
                )
            ).rowcount
            targets = 0
            if items < inp.batch_rows:
                targets = (
                    await session.execute(
                        delete(TARGETS).where(
                            tuple_(TARGETS.c.operation_id, TARGETS.c.seq).in_(
                                select(TARGETS.c.operation_id, TARGETS.c.seq)
                                .where(TARGETS.c.operation_id == op_id)
                                .limit(inp.batch_rows - items)
                            )
                        )
                    )
                ).rowcount
            purged = items + targets < inp.batch_rows
            if purged:
                await session.execute(
                    update(OPERATIONS).where(OPERATIONS.c.id == op_id).values(purged_at=datetime.now(UTC))
                )
        activity.logger.info(
            "retention: operation %s lost %s items and %s targets%s",
            op_id,
            items,
            targets,
            " (purged)" if purged else "",
        )
        return PurgeResult(operations_purged=int(purged), targets_deleted=targets, items_deleted=items)
