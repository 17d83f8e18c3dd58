"""The audit activity: one event per call, written once whatever retries (the event's key is unique
within its operation), and the approval decision it records on the operation row in the same
transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.authority import refused
from activities.contracts import RECORD_EVENT, RecordEventInput
from bulkops.domain.approval import ApprovalStatus
from bulkops.store.audit import insert_event
from bulkops.store.tables import OPERATIONS


class AuditActivities:
    def __init__(self, sessionmaker: async_sessionmaker) -> None:
        self.sessionmaker = sessionmaker

    @activity.defn(name=RECORD_EVENT)
    async def record_event(self, inp: RecordEventInput) -> None:
        async with self.sessionmaker() as session, session.begin():
            row = (
                await session.execute(
                    select(OPERATIONS.c.approval, OPERATIONS.c.start_at, OPERATIONS.c.workflow_id)
                    .where(OPERATIONS.c.id == inp.operation_id)
                    .with_for_update()
                )
            ).one_or_none()
            if row is None:
                raise ApplicationError("no such operation", non_retryable=True)
            if row.workflow_id != activity.info().workflow_id:
                # Only the operation's own workflow writes its trail (and its approval decision).
                raise refused(inp.operation_id, "the caller is not the operation's own workflow")
            if inp.require_open:
                # The row, not the workflow's input, says whether the operation may start.
                approval = (row.approval or {}).get("status")
                if approval not in (None, ApprovalStatus.APPROVED.value):
                    raise ApplicationError(f"the operation's approval is {approval}", non_retryable=True)
                # (A few seconds of slack for clocks: the timer that opened the gate ran on the server's.)
                if row.start_at is not None and row.start_at > datetime.now(UTC) + timedelta(seconds=5):
                    raise ApplicationError("the operation's start_at has not come", non_retryable=True)
            if inp.approval and row.approval is not None:
                await session.execute(
                    update(OPERATIONS)
                    .where(OPERATIONS.c.id == inp.operation_id)
                    .values(approval=OPERATIONS.c.approval.op("||")(literal(inp.approval, JSONB)))
                )
            await insert_event(session, inp.operation_id, inp.key, inp.action, inp.actor, inp.detail, inp.at)
