"""What travels to and from the workflows (inputs, run state, the `progress` answer, the fairness
coordinator's payloads) and their Temporal names: imported by the workflows, the service and activities.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from bulkops.domain.model import (
    DEFAULT_ACTIVITY_MAX_ATTEMPTS,
    DEFAULT_ACTIVITY_TIMEOUT_S,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_EVENTS_PER_RUN,
    Counters,
    OperationStatus,
    OperationType,
)
from bulkops.domain.requests import FailureThreshold

# Temporal names the service, the workflows and the fairness activity share.
BULK_OPERATION_WORKFLOW = "BulkOperationWorkflow"
COORDINATOR_WORKFLOW = "TenantCoordinatorWorkflow"
PROGRESS_QUERY = "progress"
PAUSE_UPDATE = "pause"
RESUME_UPDATE = "resume"
CANCEL_UPDATE = "cancel"
APPROVE_UPDATE = "approve"
REJECT_UPDATE = "reject"
GRANT_SIGNAL = "grant"
REQUEST_SIGNAL = "request"
RELEASE_SIGNAL = "release"
RETENTION_WORKFLOW = "RetentionWorkflow"


def coordinator_id(tenant_id: str) -> str:
    return f"bulk-tenant-{tenant_id}"


class RunState(Counters):
    """What one run hands the next through continue-as-new: a cursor, counters, the error sample."""

    cursor_seq: int = 0
    status: OperationStatus = OperationStatus.PENDING
    failure_reason: str | None = None
    started_at: datetime | None = None
    active_seconds: float = 0.0
    runs: int = 1
    max_run_history: int = 0
    slot_granted: bool = False
    # The pace's token bucket (workflows.pacing), carried so that continue-as-new keeps the pace.
    pace_tokens: float = 0.0
    pace_at: datetime | None = None


class BulkOperationInput(BaseModel):
    operation_id: uuid.UUID
    tenant_id: str
    operation_type: OperationType
    parameters: dict[str, Any]
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    failure_threshold: FailureThreshold | None = None
    notify_url: str | None = None
    # Deliveries run on their own task queue (own worker slots); None: the operation's queue.
    webhook_task_queue: str | None = None
    initiated_by: str | None = None
    created_at: datetime | None = None
    # Gates and pace, from the operation's row (workflows.gates, workflows.pacing).
    start_at: datetime | None = None
    approval_expires_at: datetime | None = None
    created_by_key_id: str | None = None
    created_by_user_id: str | None = None
    max_orders_per_second: float | None = None
    revert_of: uuid.UUID | None = None
    # Knobs a test (or an operator of a small cluster) may turn; defaults suit production.
    page_size: int = 500
    max_events_per_run: int = DEFAULT_MAX_EVENTS_PER_RUN
    activity_max_attempts: int = DEFAULT_ACTIVITY_MAX_ATTEMPTS
    activity_initial_interval_ms: int = 500
    activity_timeout_s: float = DEFAULT_ACTIVITY_TIMEOUT_S
    local_activities: bool = False
    use_fairness: bool = True
    state: RunState | None = None


class SlotRequest(BaseModel):
    tenant_id: str
    operation_id: uuid.UUID
    # When the operation was accepted: the queue is served in this order, whatever order the
    # requests arrive in.
    created_at: datetime | None = None
    max_running: int | None = None
    holder_check_s: float | None = None


class CoordinatorState(BaseModel):
    tenant_id: str
    max_running: int
    running: list[uuid.UUID] = Field(default_factory=list)
    queue: list[SlotRequest] = Field(default_factory=list)
    # While operations wait and every slot is taken, how often to check that the holders still run
    # (one terminated in the Temporal UI never sends `release`).
    holder_check_s: float = 60.0


class HolderCheck(BaseModel):
    operation_ids: list[uuid.UUID]


class RetentionInput(BaseModel):
    batch_rows: int = 5_000
    # Carried through continue-as-new: what earlier runs of this sweep deleted.
    operations_purged: int = 0
    targets_deleted: int = 0
    items_deleted: int = 0
