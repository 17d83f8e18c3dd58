"""The domain's vocabulary: operation types and statuses (and their sets), order and item statuses,
error codes, the final-status rule, the order's field list and the defaults every layer shares.
"""

from __future__ import annotations

import hashlib
import uuid
from enum import StrEnum
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field


class OperationType(StrEnum):
    BULK_CANCEL = "BULK_CANCEL"
    BULK_REFUND = "BULK_REFUND"
    BULK_UPDATE = "BULK_UPDATE"
    BULK_EXPORT = "BULK_EXPORT"


class OperationStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    PARTIAL_SUCCESS = "PARTIAL_SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        OperationStatus.COMPLETED,
        OperationStatus.PARTIAL_SUCCESS,
        OperationStatus.FAILED,
        OperationStatus.CANCELLED,
    }
)
# Accepted and not yet running: what a tenant's waiting-operations limit counts, and what may still be
# removed when its workflow never started.
WAITING_STATUSES = frozenset(
    {OperationStatus.PENDING, OperationStatus.SCHEDULED, OperationStatus.AWAITING_APPROVAL}
)
# Not ended: what the running-operations gauge reports.
OPEN_STATUSES = frozenset(OperationStatus) - TERMINAL_STATUSES


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


class ItemStatus(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class ErrorCode(StrEnum):
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    ALREADY_CANCELLED = "ALREADY_CANCELLED"
    ORDER_NOT_CANCELLABLE = "ORDER_NOT_CANCELLABLE"
    ORDER_NOT_PAID = "ORDER_NOT_PAID"
    NOTHING_TO_REFUND = "NOTHING_TO_REFUND"
    AMOUNT_EXCEEDS_REFUNDABLE = "AMOUNT_EXCEEDS_REFUNDABLE"
    ORDER_CLOSED = "ORDER_CLOSED"
    ORDER_CHANGED_SINCE = "ORDER_CHANGED_SINCE"
    RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"


FAILURE_THRESHOLD_EXCEEDED = "FAILURE_THRESHOLD_EXCEEDED"


# The `errors` sample of an operation holds at most this many failures.
MAX_ERROR_SAMPLE = 100


OPERATION_WORKFLOW_PREFIX = "bulk-op-"


def operation_workflow_id(operation_id: uuid.UUID) -> str:
    return f"{OPERATION_WORKFLOW_PREFIX}{operation_id}"


def operation_id_of_workflow(workflow_id: str) -> str | None:
    """The operation id in an operation's workflow id (`bulk-op-{id}`); None for other workflows."""
    if workflow_id.startswith(OPERATION_WORKFLOW_PREFIX):
        return workflow_id[len(OPERATION_WORKFLOW_PREFIX) :]
    return None


FAIRNESS_KEY_MAX_BYTES = 64  # Temporal's limit


def fairness_key(tenant_id: str) -> str:
    """A tenant's Temporal fairness key: the tenant, or a digest of it where it is too long."""
    if len(tenant_id.encode()) <= FAIRNESS_KEY_MAX_BYTES:
        return tenant_id
    return hashlib.sha256(tenant_id.encode()).hexdigest()


def final_status(
    success_count: int, failed_count: int, *, cancelled: bool = False, threshold_tripped: bool = False
) -> OperationStatus:
    """The audit's rule: no failures → COMPLETED; some successes → PARTIAL_SUCCESS; else FAILED."""
    if cancelled:
        return OperationStatus.CANCELLED
    if threshold_tripped or (failed_count and not success_count):
        return OperationStatus.FAILED
    return OperationStatus.PARTIAL_SUCCESS if failed_count else OperationStatus.COMPLETED


# The order's fields (CONTRACT §3), in the order exports and reads list them: the one declaration;
# ORDER_FIELDS, the per-order SQL's column list and the API's OrderRead follow it (checked by tests).
OrderField = Literal[
    "id",
    "tenant_id",
    "status",
    "currency",
    "total_cents",
    "refunded_cents",
    "paid_at",
    "customer_email",
    "shipping_method",
    "note",
    "tags",
    "metadata",
    "version",
    "created_at",
    "updated_at",
    "cancelled_at",
    "cancel_reason",
]
ORDER_FIELDS: tuple[str, ...] = get_args(OrderField)


MAX_ORDER_IDS = 10_000


# What an operation gets unless its creator asks otherwise (and what `bulkops bench` measures).
DEFAULT_MAX_CONCURRENCY = 50
# The workflow's knobs, defaulted once for Settings (BULKOPS_…) and the workflow input.
DEFAULT_MAX_EVENTS_PER_RUN = 8_000
DEFAULT_ACTIVITY_MAX_ATTEMPTS = 5
DEFAULT_ACTIVITY_TIMEOUT_S = 10.0


class ErrorSample(BaseModel):
    order_id: uuid.UUID
    code: ErrorCode
    message: str
    retryable: bool


class Counters(BaseModel):
    """An operation's counters and error sample, declared once: the run state, the `progress` query,
    the summary row's finalize input and the API's `BulkOperation` all inherit them (so their JSON
    stays flat). Required in every answer: the defaults only serve a fresh run state."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    total_count: int = 0
    processed_count: int = 0
    success_count: int = 0
    failed_count: int = 0
    errors: list[ErrorSample] = Field(default_factory=list)

    def counters(self) -> dict[str, Any]:
        """These counters, to build another `Counters` from (`Other(**x.counters(), …)`)."""
        return {name: getattr(self, name) for name in Counters.model_fields}
