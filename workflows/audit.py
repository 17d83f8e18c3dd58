"""Writing an operation's audit events from its workflow (deterministic code only).

An event's key makes it unique within the operation: the action itself for what happens once
(`started`, `ended` …), the action and the update's id for a person's control action. A replayed
workflow or a retried activity therefore records nothing twice.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from activities.contracts import RECORD_EVENT, RecordEventInput
from bulkops.domain.audit import AuditAction
from bulkops.domain.people import Actor
from workflows.bookkeeping import BOOKKEEPING_RETRY, BOOKKEEPING_TIMEOUT
from workflows.contracts import BulkOperationInput


async def record(
    inp: BulkOperationInput,
    action: AuditAction,
    actor: Actor | None = None,
    detail: dict[str, Any] | None = None,
    *,
    approval: dict[str, Any] | None = None,
    require_open: bool = False,
) -> None:
    update = workflow.current_update_info()
    key = f"{action.value}:{update.id}" if update is not None else action.value
    await workflow.execute_activity(
        RECORD_EVENT,
        RecordEventInput(
            operation_id=inp.operation_id,
            key=key,
            action=action,
            actor=actor,
            detail=detail or {},
            at=workflow.now(),
            approval=approval,
            require_open=require_open,
        ),
        start_to_close_timeout=BOOKKEEPING_TIMEOUT,
        retry_policy=BOOKKEEPING_RETRY,
        summary=f"audit: {action.value}",
    )
