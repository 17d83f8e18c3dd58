"""The worker's orphan sweep: operations whose workflow was closed from outside bulkops (terminated in
the Temporal UI, timed out, failed) get their summary row here, since their workflow will never
write it, and give back their tenant's fairness slot. Readers never do this: reads write nothing.

Every worker that runs activities sweeps; closing is written once (the row must not have ended), so
two workers sweeping at once close a row once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.operations import close_from_outcomes
from bulkops.domain.model import operation_workflow_id
from bulkops.settings import Settings
from bulkops.store.tables import NOT_TERMINAL, OPERATIONS
from workflows.contracts import RELEASE_SIGNAL, coordinator_id

log = logging.getLogger(__name__)

# Only these: a workflow that COMPLETED wrote its summary row before it did.
CLOSED_FROM_OUTSIDE = {
    WorkflowExecutionStatus.TERMINATED: "WORKFLOW_TERMINATED",
    WorkflowExecutionStatus.TIMED_OUT: "WORKFLOW_TIMED_OUT",
    WorkflowExecutionStatus.FAILED: "WORKFLOW_FAILED",
    WorkflowExecutionStatus.CANCELED: "WORKFLOW_CANCELED",
}
DESCRIBES_AT_ONCE = 10


class OrphanSweeper:
    """`start_unstarted(operation_id)`: what to do with a row that has no workflow at all (the
    service's `starting.start_unconfirmed`, handed in by the worker: activities know no service)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker,
        client: Client,
        settings: Settings,
        start_unstarted: Callable[[uuid.UUID], Awaitable[bool]] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.client = client
        self.settings = settings
        self.start_unstarted = start_unstarted
        self.gate = asyncio.Semaphore(DESCRIBES_AT_ONCE)

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # Postgres or Temporal briefly unreachable: next round
                log.warning("orphan sweep failed: %s", exc)
            await asyncio.sleep(self.settings.orphan_sweep_s)

    async def sweep(self) -> int:
        """One round over the operations that have not ended; how many rows it closed."""
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(select(OPERATIONS.c.id, OPERATIONS.c.tenant_id).where(NOT_TERMINAL))
            ).all()
        closed = await asyncio.gather(*(self._check(r) for r in rows))
        return sum(closed)

    async def _check(self, row: Any) -> bool:
        async with self.gate:
            try:
                desc = await self.client.get_workflow_handle(operation_workflow_id(row.id)).describe()
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    log.info("orphan sweep: cannot describe %s: %s", row.id, err)
                    return False
                # No workflow: being started right now, or its start went unconfirmed and nobody
                # repeated the request.
                if self.start_unstarted is not None:
                    await self.start_unstarted(row.id)
                return False
        reason = CLOSED_FROM_OUTSIDE.get(desc.status) if desc.status is not None else None
        if reason is None:
            return False
        # Attempts running when it closed may still commit their outcomes; none outlives the per-order
        # timeout, so the counts are final only after it.
        closed_at = desc.close_time or datetime.now(UTC)
        if datetime.now(UTC) < closed_at + timedelta(seconds=self.settings.activity_timeout_s):
            return False
        if not await close_from_outcomes(self.sessionmaker, row.id, reason, closed_at):
            return False
        log.warning(
            "operation %s tenant %s: workflow %s from outside; row closed", row.id, row.tenant_id, reason
        )
        await self._release(row.tenant_id, row.id)
        return True

    async def _release(self, tenant_id: str, operation_id: uuid.UUID) -> None:
        try:
            await self.client.get_workflow_handle(coordinator_id(tenant_id)).signal(
                RELEASE_SIGNAL, operation_id
            )
        except RPCError as exc:  # no coordinator (fairness off), or it is gone: nothing to give back
            log.info("operation %s: no slot released: %s", operation_id, exc)
