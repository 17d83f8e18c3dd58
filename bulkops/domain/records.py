"""Typed records of what the service reads back from PostgreSQL: every column with its type, so that
mypy checks each field a service, an activity or a view reads. The store's repositories make them
(`bulkops.store.operations`); nothing here does I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bulkops.domain.model import ItemStatus, OperationStatus, OperationType, OrderStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class OperationRecord:
    """One row of `bulk_operations`: a bulk operation's request, gate, checkpoint and summary.

    Its counters are the workflow's checkpoint while it runs (true as of `progress_at`) and its
    summary once `status` is terminal."""

    id: uuid.UUID
    tenant_id: str
    operation_type: OperationType
    status: OperationStatus
    parameters: dict[str, Any]
    # What it was asked to select: `{"order_ids_count": n}`, `{"filter": {...}}`,
    # `{"retry_of": ..., "all_failed": ...}` or `{"revert_of": ...}`.
    selection: dict[str, Any]
    max_concurrency: int
    failure_threshold: dict[str, Any] | None
    total_count: int
    processed_count: int
    success_count: int
    failed_count: int
    errors: list[dict[str, Any]]
    failure_reason: str | None
    initiated_by: str | None
    retry_of: uuid.UUID | None
    revert_of: uuid.UUID | None
    lineage_id: uuid.UUID
    selected_at: datetime | None
    created_by_key_id: uuid.UUID | None
    created_by_user_id: uuid.UUID | None
    created_by: dict[str, Any] | None
    start_at: datetime | None
    max_orders_per_second: float | None
    approval: dict[str, Any] | None
    notify_url: str | None
    idempotency_key: str | None
    request_hash: str | None
    workflow_id: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    purged_at: datetime | None
    progress_at: datetime | None

    @property
    def ended(self) -> bool:
        return self.status.terminal


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemRecord:
    """One order's outcome in an operation (a row of `bulk_operation_items`), in selection order `seq`."""

    operation_id: uuid.UUID
    order_id: uuid.UUID
    seq: int
    status: ItemStatus
    error_code: str | None
    error_message: str | None
    retryable: bool
    # What the step kept: an export's row, an update's previous values (what a revert puts back).
    result: dict[str, Any] | None
    processed_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRecord:
    """One of a tenant's orders (a row of `orders`): what the operations act on."""

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
    # Bumped by every change: a revert puts back only an order nobody changed since its update.
    version: int
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None
    cancel_reason: str | None
