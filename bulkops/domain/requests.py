"""What a caller may ask for, validated once: per-type parameters, filters, thresholds, and the
bodies that create operations and orders. Unknown fields are rejected; unstorable text is a 422.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from bulkops.domain.approval import MAX_ORDERS_PER_SECOND, MAX_SCHEDULE_DAYS
from bulkops.domain.model import (
    DEFAULT_MAX_CONCURRENCY,
    MAX_ORDER_IDS,
    OperationType,
    OrderField,
    OrderStatus,
)

_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


# How deep free-form JSON (an order's or an update's `metadata`) may nest: deeper is a 422, never a
# recursion error here or a stack-depth error in PostgreSQL's jsonb parser.
MAX_JSON_DEPTH = 32


def _check_storable(value: Any, depth: int = 0) -> None:
    """PostgreSQL text and jsonb hold no NUL character, UTF-8 no unpaired surrogate and JSON no NaN or
    infinity, and nothing nests deeper than MAX_JSON_DEPTH: refuse them at the edge (422) rather
    than fail in the database (500)."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"JSON may nest at most {MAX_JSON_DEPTH} levels deep")
    if isinstance(value, str):
        if _UNSTORABLE_TEXT.search(value):
            raise ValueError("text may not contain NUL characters or unpaired surrogates")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("numbers must be finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_storable(key, depth + 1)
            _check_storable(item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_storable(item, depth + 1)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        _check_storable(data)
        return data


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
    tags_any: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, min_length=1, max_length=100
    )
    customer_email: str | None = Field(default=None, max_length=320)


class Selection(BaseModel):
    """How the targets were chosen; stored on the operation and echoed in `BulkOperationRead`."""

    order_ids: list[uuid.UUID] | None = None
    filter: OrderFilter | None = None
    retry_of: uuid.UUID | None = None


class BulkOperationCreate(_Strict):
    operation_type: OperationType
    order_ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=MAX_ORDER_IDS)
    filter: OrderFilter | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    max_concurrency: int = Field(default=DEFAULT_MAX_CONCURRENCY, ge=1, le=500)
    failure_threshold: FailureThreshold | None = None
    dry_run: bool = False
    notify_url: HttpUrl | None = None
    start_at: datetime | None = Field(
        default=None,
        description="a future time: the operation is SCHEDULED until then, and its selection (a filter) "
        "is evaluated when it starts, not when it is created",
    )
    max_orders_per_second: float | None = Field(
        default=None,
        gt=0,
        le=MAX_ORDERS_PER_SECOND,
        description="pace of order starts (default: the tenant's)",
    )

    @model_validator(mode="after")
    def _check(self) -> BulkOperationCreate:
        if (self.order_ids is None) == (self.filter is None):
            raise ValueError("give exactly one of order_ids or filter")
        if self.start_at is not None:
            if self.start_at.tzinfo is None:
                self.start_at = self.start_at.replace(tzinfo=UTC)
            now = datetime.now(UTC)
            if not now < self.start_at <= now + timedelta(days=MAX_SCHEDULE_DAYS):
                raise ValueError(f"start_at must lie in the future, at most {MAX_SCHEDULE_DAYS} days ahead")
        self.parameters = parse_parameters(self.operation_type, self.parameters)
        if self.order_ids is not None:
            self.order_ids = list(dict.fromkeys(self.order_ids))
        return self


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

    def paid_at_or_default(self, now: datetime) -> datetime | None:
        """An order placed in a paid state (anything but PENDING or CANCELLED) without `paid_at` was
        paid when it was placed: the refund rules look at `paid_at`."""
        if self.paid_at is None and self.status not in (OrderStatus.PENDING, OrderStatus.CANCELLED):
            return now
        return self.paid_at


class OrdersCreate(_Strict):
    orders: list[OrderCreate] = Field(min_length=1, max_length=1000)
