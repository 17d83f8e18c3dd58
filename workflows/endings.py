"""An operation's ending: its summary row, then giving back its fairness slot, and the completion webhook.

Deterministic code only (called from `BulkOperationWorkflow`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from activities.contracts import (
    DELIVER_WEBHOOK,
    FINALIZE_OPERATION,
    REQUEST_SLOT,
    FinalizeInput,
    WebhookInput,
)
from bulkops.domain.audit import AuditAction
from bulkops.domain.model import OperationStatus
from workflows.audit import record
from workflows.bookkeeping import BOOKKEEPING_RETRY, BOOKKEEPING_TIMEOUT
from workflows.contracts import RELEASE_SIGNAL, BulkOperationInput, RunState, SlotRequest, coordinator_id


@dataclass
class Ending:
    """How a run is heading for its end. Never carried across continue-as-new: a run that has any of
    these set ends rather than continues."""

    cancel_requested: bool = False
    threshold_tripped: bool = False
    finishing: bool = False  # the summary is being written: too late to cancel
    finalized: bool = False  # the summary row is written (the query may show the final status)
    refused: ActivityError | None = None  # an activity refused: not this workflow's to run

    @property
    def settled(self) -> bool:
        """Cancelled, or its summary written: no pause or decision may change it any more."""
        return self.cancel_requested or self.finalized


async def finalize(inp: BulkOperationInput, s: RunState, final: OperationStatus, now: datetime) -> None:
    """Record the `ended` audit event, then write the summary row (once: the activity leaves a row
    that has ended alone): whoever finds the row ended finds the event too."""
    detail = {"status": final.value, "processed_count": s.processed_count, "failure_reason": s.failure_reason}
    await record(inp, AuditAction.ENDED, detail=detail)
    await workflow.execute_activity(
        FINALIZE_OPERATION,
        FinalizeInput(
            operation_id=inp.operation_id,
            operation_type=inp.operation_type,
            tenant_id=inp.tenant_id,
            status=final,
            **s.counters(),
            failure_reason=s.failure_reason,
            started_at=s.started_at,
            completed_at=now,
        ),
        start_to_close_timeout=BOOKKEEPING_TIMEOUT,
        retry_policy=BOOKKEEPING_RETRY,
    )


async def request_slot(inp: BulkOperationInput) -> None:
    """Ask the tenant's coordinator for a running slot; `grant` comes as a signal."""
    await workflow.execute_activity(
        REQUEST_SLOT,
        SlotRequest(tenant_id=inp.tenant_id, operation_id=inp.operation_id, created_at=inp.created_at),
        start_to_close_timeout=BOOKKEEPING_TIMEOUT,
        retry_policy=BOOKKEEPING_RETRY,
    )


async def release_slot(inp: BulkOperationInput) -> None:
    try:
        await workflow.get_external_workflow_handle(coordinator_id(inp.tenant_id)).signal(
            RELEASE_SIGNAL, inp.operation_id
        )
    except Exception:  # no coordinator: nothing holds a slot for us
        workflow.logger.warning("operation %s: no coordinator to release", inp.operation_id)


async def notify(inp: BulkOperationInput) -> None:
    # Retried with backoff by Temporal until the receiver answers 2xx or 24 hours pass.
    try:
        await workflow.execute_activity(
            DELIVER_WEBHOOK,
            WebhookInput(
                operation_id=inp.operation_id, tenant_id=inp.tenant_id, notify_url=inp.notify_url or ""
            ),
            task_queue=inp.webhook_task_queue,
            # The activity ends each attempt within BULKOPS_WEBHOOK_TIMEOUT_S itself; this is a backstop.
            start_to_close_timeout=timedelta(seconds=60),
            schedule_to_close_timeout=timedelta(hours=24),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(minutes=10),
            ),
            summary=f"webhook {inp.notify_url}",
        )
    except ActivityError as err:
        workflow.logger.error("operation %s: webhook not delivered: %s", inp.operation_id, err.cause)
