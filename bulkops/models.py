"""Pydantic contracts shared by the API, the workflows and the activities.

`XInput` / `XResult` travel through Temporal (pydantic data converter); `XCreate` / `XRead` are the
HTTP shapes. This module imports nothing of ours so that the workflow sandbox can pass it through.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator


class OperationType(StrEnum):
    BULK_CANCEL = "BULK_CANCEL"
    BULK_REFUND = "BULK_REFUND"
    BULK_UPDATE = "BULK_UPDATE"
    BULK_EXPORT = "BULK_EXPORT"


class OperationStatus(StrEnum):
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
    RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"


FAILURE_THRESHOLD_EXCEEDED = "FAILURE_THRESHOLD_EXCEEDED"
# The `errors` sample of an operation holds at most this many failures.
MAX_ERROR_SAMPLE = 100


def operation_workflow_id(operation_id: uuid.UUID) -> str:
    return f"bulk-op-{operation_id}"


def final_status(
    success_count: int, failed_count: int, *, cancelled: bool = False, threshold_tripped: bool = False
) -> OperationStatus:
    """The audit's rule: no failures → COMPLETED; some successes → PARTIAL_SUCCESS; else FAILED."""
    if cancelled:
        return OperationStatus.CANCELLED
    if threshold_tripped or (failed_count and not success_count):
        return OperationStatus.FAILED
    return OperationStatus.PARTIAL_SUCCESS if failed_count else OperationStatus.COMPLETED


ORDER_FIELDS = (
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
)
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


_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def _check_storable(value: Any) -> None:
    """PostgreSQL text and jsonb hold no NUL character, UTF-8 no unpaired surrogate and JSON no NaN or
    infinity: refuse them at the edge (422) rather than fail in the database (500)."""
    if isinstance(value, str):
        if _UNSTORABLE_TEXT.search(value):
            raise ValueError("text may not contain NUL characters or unpaired surrogates")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("numbers must be finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_storable(key)
            _check_storable(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_storable(item)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        _check_storable(data)
        return data


# --- operation parameters (validated per type; unknown fields rejected) -------------------------


class CancelParameters(_Strict):
    reason: str = Field(default="", max_length=500)


class RefundParameters(_Strict):
    reason: str = Field(default="", max_length=500)
    amount_cents: int | None = Field(default=None, gt=0)


class UpdateSet(_Strict):
    note: str | None = Field(default=None, max_length=2000)
    shipping_method: str | None = Field(default=None, max_length=100)


class UpdateParameters(_Strict):
    set: UpdateSet | None = None
    add_tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list)
    remove_tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list)
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> UpdateParameters:
        has_set = self.set is not None and bool(self.set.model_dump(exclude_unset=True))
        if not (has_set or self.add_tags or self.remove_tags or self.metadata):
            raise ValueError("BULK_UPDATE needs at least one of set, add_tags, remove_tags, metadata")
        return self


class ExportParameters(_Strict):
    format: Literal["csv", "jsonl"] = "csv"
    fields: list[OrderField] | None = Field(default=None, min_length=1)


PARAMETER_MODELS: dict[OperationType, type[BaseModel]] = {
    OperationType.BULK_CANCEL: CancelParameters,
    OperationType.BULK_REFUND: RefundParameters,
    OperationType.BULK_UPDATE: UpdateParameters,
    OperationType.BULK_EXPORT: ExportParameters,
}


def parse_parameters(operation_type: OperationType, raw: dict[str, Any]) -> dict[str, Any]:
    """Validate raw parameters for a type and return their canonical JSON form."""
    model = PARAMETER_MODELS[operation_type].model_validate(raw)
    return model.model_dump(mode="json", exclude_unset=True)


class FailureThreshold(_Strict):
    max_failure_ratio: float = Field(ge=0, le=1)
    min_processed: int = Field(default=1, ge=1)


class OrderFilter(_Strict):
    statuses: list[OrderStatus] | None = Field(default=None, min_length=1)
    created_from: datetime | None = None
    created_to: datetime | None = None
    tags_any: list[str] | None = Field(default=None, min_length=1)
    customer_email: str | None = Field(default=None, max_length=320)


MAX_ORDER_IDS = 10_000


class Selection(BaseModel):
    """How the targets were chosen; stored on the operation and echoed in `BulkOperationRead`."""

    order_ids: list[uuid.UUID] | None = None
    filter: OrderFilter | None = None
    retry_of: uuid.UUID | None = None


# --- HTTP shapes -----------------------------------------------------------------------------------


# What an operation gets unless its creator asks otherwise (and what `bulkops bench` measures).
DEFAULT_MAX_CONCURRENCY = 50


class BulkOperationCreate(_Strict):
    operation_type: OperationType
    order_ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=MAX_ORDER_IDS)
    filter: OrderFilter | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    max_concurrency: int = Field(default=DEFAULT_MAX_CONCURRENCY, ge=1, le=500)
    failure_threshold: FailureThreshold | None = None
    dry_run: bool = False
    notify_url: HttpUrl | None = None

    @model_validator(mode="after")
    def _check(self) -> BulkOperationCreate:
        if (self.order_ids is None) == (self.filter is None):
            raise ValueError("give exactly one of order_ids or filter")
        self.parameters = parse_parameters(self.operation_type, self.parameters)
        if self.order_ids is not None:
            self.order_ids = list(dict.fromkeys(self.order_ids))
        return self


class ErrorSample(BaseModel):
    order_id: uuid.UUID
    code: ErrorCode
    message: str
    retryable: bool


class Links(BaseModel):
    self: str
    items: str
    events: str
    export: str | None = None
    temporal_ui: str


class BulkOperationRead(BaseModel):
    id: uuid.UUID
    tenant_id: str
    operation_type: OperationType
    status: OperationStatus
    total_count: int
    processed_count: int
    success_count: int
    failed_count: int
    percent_complete: float
    orders_per_second: float | None
    eta_seconds: float | None
    parameters: dict[str, Any]
    selection: dict[str, Any]
    max_concurrency: int
    failure_threshold: FailureThreshold | None
    failure_reason: str | None
    errors: list[ErrorSample]
    initiated_by: str | None
    retry_of: uuid.UUID | None
    notify_url: str | None = None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    workflow_id: str
    links: Links


class BulkOperationPage(BaseModel):
    items: list[BulkOperationRead]
    next_cursor: str | None


class DryRunRead(BaseModel):
    dry_run: Literal[True] = True
    operation_type: OperationType
    matched_count: int
    would_fail_count: int
    would_fail_by_code: dict[str, int]
    sample: list[dict[str, Any]]


class ItemRead(BaseModel):
    order_id: uuid.UUID
    seq: int
    status: ItemStatus
    error_code: ErrorCode | None
    error_message: str | None
    retryable: bool
    result: dict[str, Any] | None
    processed_at: datetime


class ItemPage(BaseModel):
    items: list[ItemRead]
    next_cursor: str | None


class OrderCreate(_Strict):
    status: OrderStatus = OrderStatus.PAID
    currency: str = Field(default="USD", min_length=3, max_length=3)
    total_cents: int = Field(ge=0, le=10**12)
    refunded_cents: int = Field(default=0, ge=0)
    paid_at: datetime | None = None
    customer_email: str | None = Field(default=None, max_length=320)
    shipping_method: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=2000)
    tags: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=100)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> OrderCreate:
        if self.refunded_cents > self.total_cents:
            raise ValueError("refunded_cents cannot exceed total_cents")
        # The driver reads back no timestamp outside years 1-9999 in UTC; an offset can push year 1
        # or 9999 over that edge, so keep a margin.
        if self.paid_at is not None and not 1900 <= self.paid_at.year <= 9998:
            raise ValueError("paid_at must fall between the years 1900 and 9998")
        return self


class OrdersCreate(_Strict):
    orders: list[OrderCreate] = Field(min_length=1, max_length=1000)


class OrderRead(BaseModel):
    id: uuid.UUID
    tenant_id: str
    status: OrderStatus
    currency: str
    total_cents: int
    refunded_cents: int
    paid_at: datetime | None
    customer_email: str | None
    shipping_method: str | None
    note: str | None
    tags: list[str]
    metadata: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None
    cancel_reason: str | None


class OrderPage(BaseModel):
    items: list[OrderRead]
    next_cursor: str | None


# --- Temporal shapes -------------------------------------------------------------------------------


class RunState(BaseModel):
    """What one run hands the next through continue-as-new: a cursor, counters, the error sample."""

    cursor_seq: int = 0
    total_count: int = 0
    processed_count: int = 0
    success_count: int = 0
    failed_count: int = 0
    errors: list[ErrorSample] = Field(default_factory=list)
    status: OperationStatus = OperationStatus.PENDING
    failure_reason: str | None = None
    started_at: datetime | None = None
    active_seconds: float = 0.0
    runs: int = 1
    max_run_history: int = 0
    slot_granted: bool = False


class BulkOperationInput(BaseModel):
    operation_id: uuid.UUID
    tenant_id: str
    operation_type: OperationType
    parameters: dict[str, Any]
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    failure_threshold: FailureThreshold | None = None
    notify_url: str | None = None
    initiated_by: str | None = None
    created_at: datetime | None = None
    # Knobs a test (or an operator of a small cluster) may turn; defaults suit production.
    page_size: int = 500
    max_events_per_run: int = 8_000
    activity_max_attempts: int = 5
    activity_initial_interval_ms: int = 500
    activity_timeout_s: float = 10.0
    local_activities: bool = False
    use_fairness: bool = True
    state: RunState | None = None


class Progress(BaseModel):
    """The `progress` query's answer, and the shape pause/resume/cancel updates return."""

    operation_id: uuid.UUID
    tenant_id: str
    operation_type: OperationType
    status: OperationStatus
    total_count: int
    processed_count: int
    success_count: int
    failed_count: int
    in_flight: int
    errors: list[ErrorSample]
    failure_reason: str | None
    started_at: datetime | None
    active_seconds: float
    resumed_at: datetime | None
    run: int
    history_length: int
    max_run_history: int


class SnapshotInput(BaseModel):
    operation_id: uuid.UUID
    tenant_id: str


class SnapshotResult(BaseModel):
    total_count: int


class FetchTargetsInput(BaseModel):
    operation_id: uuid.UUID
    after_seq: int
    limit: int


class Target(BaseModel):
    seq: int
    order_id: uuid.UUID


class FetchTargetsResult(BaseModel):
    targets: list[Target]


class SetStatusInput(BaseModel):
    operation_id: uuid.UUID
    status: OperationStatus
    started_at: datetime | None = None


class ProcessOrderInput(BaseModel):
    operation_id: uuid.UUID
    tenant_id: str
    operation_type: OperationType
    order_id: uuid.UUID
    seq: int
    parameters: dict[str, Any]


class RecordFailureInput(BaseModel):
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


class FinalizeInput(BaseModel):
    operation_id: uuid.UUID
    status: OperationStatus
    total_count: int
    processed_count: int
    success_count: int
    failed_count: int
    errors: list[ErrorSample]
    failure_reason: str | None
    started_at: datetime | None
    completed_at: datetime


class WebhookInput(BaseModel):
    operation_id: uuid.UUID
    tenant_id: str
    notify_url: str


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
