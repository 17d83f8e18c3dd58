"""HTTP-only shapes: pages of operations, items and orders."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from bulkops.domain.model import ErrorCode, ItemStatus, OrderStatus
from bulkops.domain.views import BulkOperationRead


class BulkOperationPage(BaseModel):
    items: list[BulkOperationRead]
    next_cursor: str | None


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
