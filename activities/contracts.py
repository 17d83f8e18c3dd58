"""The activities' names and payloads: what a workflow needs to call one without importing its code."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from bulkops.domain.audit import AuditAction
from bulkops.domain.model import Counters, ErrorCode, ItemStatus, OperationStatus, OperationType
from bulkops.domain.people import Actor

# Each activity's registered name: workflows call activities by these, never by importing their code.
PROCESS_ORDER = "process_order"
SNAPSHOT_SELECTION = "snapshot_selection"
FETCH_TARGETS = "fetch_targets"
SET_STATUS = "set_status"
FINALIZE_OPERATION = "finalize_operation"
RECORD_FAILURE = "record_failure"
REQUEST_SLOT = "request_slot"
CLOSED_SLOT_HOLDERS = "closed_slot_holders"
DELIVER_WEBHOOK = "deliver_webhook"
RECORD_EVENT = "record_event"
REVERT_ORDER = "revert_order"
PURGE_EXPIRED = "purge_expired"


# The type of the non-retryable error an activity raises when its input disagrees with the
# operation's row, or its caller is not the row's own workflow (`activities.authority`).
AUTHORITY_REFUSED = "AuthorityRefused"


class SnapshotInput(BaseModel):
    operation_id: uuid.UUID
    tenant_id: str
    # What the workflow believes it runs; checked against the row (None: not claimed).
    operation_type: OperationType | None = None
    parameters: dict[str, Any] | None = None


class SnapshotResult(BaseModel):
    total_count: int
    # Set when the gate, deciding on the selection just snapshotted, held the operation for approval.
    approval_expires_at: datetime | None = None


class Checkpoint(Counters):
    """The counters as the workflow knows them, written to the operation row by bookkeeping it does
    anyway (a page fetch, a status change): what readers get while the query cannot answer."""

    at: datetime


class FetchTargetsInput(BaseModel):
    operation_id: uuid.UUID
    after_seq: int
    limit: int
    checkpoint: Checkpoint | None = None


class Target(BaseModel):
    seq: int
    order_id: uuid.UUID


class FetchTargetsResult(BaseModel):
    targets: list[Target]


class SetStatusInput(BaseModel):
    operation_id: uuid.UUID
    status: OperationStatus
    started_at: datetime | None = None
    checkpoint: Checkpoint | None = None


class ProcessOrderInput(BaseModel):
    operation_id: uuid.UUID
    tenant_id: str
    operation_type: OperationType
    order_id: uuid.UUID
    seq: int
    parameters: dict[str, Any]


class MetricLabels(BaseModel):
    """What the worker's metrics and logs label an operation's bookkeeping with (its type and tenant),
    so that they need no lookup; the activity itself takes its authority from the row. None in
    inputs scheduled before these fields existed."""

    operation_type: OperationType | None = None
    tenant_id: str | None = None


class RecordFailureInput(MetricLabels):
    operation_id: uuid.UUID
    order_id: uuid.UUID
    seq: int
    message: str


class OrderOutcome(BaseModel):
    order_id: uuid.UUID
    status: ItemStatus
    error_code: ErrorCode | None = None
    error_message: str | None = None
    retryable: bool = False

    @field_validator("error_message")
    @classmethod
    def _short(cls, v: str | None) -> str | None:
        return v[:500] if v else v


class FinalizeInput(Counters, MetricLabels):
    operation_id: uuid.UUID
    status: OperationStatus
    failure_reason: str | None
    started_at: datetime | None
    completed_at: datetime


class WebhookInput(BaseModel):
    operation_id: uuid.UUID
    tenant_id: str
    notify_url: str


class RecordEventInput(BaseModel):
    operation_id: uuid.UUID
    # Unique within the operation: a retried or replayed write of the same event does nothing.
    key: str
    action: AuditAction
    actor: Actor | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
    at: datetime
    # An approval decision to merge into the row's `approval`.
    approval: dict[str, Any] | None = None
    # Refuse (non-retryably) unless the row says the operation may start: approved, start_at reached.
    require_open: bool = False


class PurgeInput(BaseModel):
    # Rows deleted per table and call: one short transaction, however large the operation was.
    batch_rows: int = Field(default=5_000, ge=1)


class PurgeResult(BaseModel):
    """What one call deleted; `done` when no ended operation past the retention period is left."""

    operations_purged: int = 0
    targets_deleted: int = 0
    items_deleted: int = 0
    done: bool = False
