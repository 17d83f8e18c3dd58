"""SQLAlchemy 2.0 typed table models. Every change here needs an Alembic migration."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ColumnElement,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bulkops.domain.model import TERMINAL_STATUSES


class Base(DeclarativeBase):
    pass


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    webhook_secret: Mapped[str] = mapped_column(String(128))
    # After a rotation the previous secret keeps signing (beside the new one) until this time.
    webhook_secret_previous: Mapped[str | None] = mapped_column(String(128))
    webhook_secret_previous_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The tenant's `TenantPolicy` (approval rules, default pace); NULL: the defaults.
    policy: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _now()


class User(Base):
    """A person of a tenant: what their personal keys and console sessions act as."""

    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    # Who the identity provider says this is (the ID token's `iss` and `sub`), once signed in through it.
    issuer: Mapped[str | None] = mapped_column(String(500))
    subject: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    __table_args__ = (
        # One person per address in a tenant, whatever its case.
        Index("uq_users_tenant_email", "tenant_id", func.lower(text("email")), unique=True),
        Index(
            "uq_users_tenant_subject",
            "tenant_id",
            "issuer",
            "subject",
            unique=True,
            postgresql_where=text("subject IS NOT NULL"),
        ),
    )


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="default")
    role: Mapped[str] = mapped_column(String(16), default="operator", server_default="operator")
    # A personal key acts as its user (at most with the user's role); a service key has no person.
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), index=True)
    service: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    created_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (CheckConstraint("service = (user_id IS NULL)", name="ck_api_keys_owner"),)


class ConsoleSessionRow(Base):
    """One console sign-in. The signed cookie only names this row: ending it (sign-out, sign out
    everywhere, the user disabled) ends the session wherever its cookie was copied to."""

    __tablename__ = "console_sessions"
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    # The API key signed in with (method 'key'); its revocation ends the session.
    key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id"))
    method: Mapped[str] = mapped_column(String(8))  # 'key' or 'oidc'
    created_at: Mapped[datetime] = _now()
    last_seen_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_reason: Mapped[str | None] = mapped_column(String(32))
    __table_args__ = (CheckConstraint("method IN ('key', 'oidc')", name="ck_console_sessions_method"),)


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    status: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    total_cents: Mapped[int] = mapped_column(BigInteger)
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    customer_email: Mapped[str | None] = mapped_column(String(320))
    shipping_method: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_orders_tenant_status", "tenant_id", "status"),
        Index("ix_orders_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_orders_tenant_email", "tenant_id", "customer_email"),
        Index("ix_orders_tags", "tags", postgresql_using="gin"),
    )


class Refund(Base):
    __tablename__ = "refunds"
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    operation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bulk_operations.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = _now()
    __table_args__ = (UniqueConstraint("operation_id", "order_id", name="uq_refunds_operation_order"),)


OPEN_PREDICATE = "status NOT IN ({})".format(", ".join(f"'{s.value}'" for s in sorted(TERMINAL_STATUSES)))


class BulkOperation(Base):
    __tablename__ = "bulk_operations"
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    operation_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB)
    selection: Mapped[dict[str, Any]] = mapped_column(JSONB)
    max_concurrency: Mapped[int] = mapped_column(Integer)
    failure_threshold: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    total_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    processed_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    success_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    initiated_by: Mapped[str | None] = mapped_column(String(200))
    retry_of: Mapped[uuid.UUID | None] = mapped_column(UUID)
    revert_of: Mapped[uuid.UUID | None] = mapped_column(UUID)
    # The root of its chain of retries and reverts (an original is its own): a retry selects against
    # the whole lineage, under a lock on the root's row.
    lineage_id: Mapped[uuid.UUID] = mapped_column(UUID)
    # When its targets were snapshotted (the gate decides on them; a filter is never evaluated again).
    selected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The API key that created it, and its person (neither may approve it), and who that was (`Actor`).
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    created_by: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    start_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    max_orders_per_second: Mapped[float | None] = mapped_column(Float)
    approval: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    notify_url: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    workflow_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = _now()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When retention deleted its targets, items and exported rows (the summary row stays).
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The counters above are a checkpoint while the operation runs: true as of this (workflow) time.
    progress_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_bulk_operations_idempotency"),
        Index("ix_bulk_operations_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_bulk_operations_unpurged", "completed_at", postgresql_where=text("purged_at IS NULL")),
        # A retry's selection excludes the failures that other retries of the same original cover.
        Index("ix_bulk_operations_retry_of", "retry_of", postgresql_where=text("retry_of IS NOT NULL")),
        Index("ix_bulk_operations_lineage", "lineage_id"),
        # The operations of a tenant that have not ended: what its admission limits count.
        Index(
            "ix_bulk_operations_tenant_open",
            "tenant_id",
            "status",
            postgresql_where=text(OPEN_PREDICATE),
        ),
        # An operation is reverted at most once, however many requests race.
        Index(
            "uq_bulk_operations_revert_of",
            "revert_of",
            unique=True,
            postgresql_where=text("revert_of IS NOT NULL"),
        ),
    )


class BulkOperationTarget(Base):
    __tablename__ = "bulk_operation_targets"
    operation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bulk_operations.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(UUID)
    __table_args__ = (UniqueConstraint("operation_id", "order_id", name="uq_targets_operation_order"),)


class BulkOperationItem(Base):
    __tablename__ = "bulk_operation_items"
    operation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bulk_operations.id", ondelete="CASCADE"), primary_key=True
    )
    order_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    retryable: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    processed_at: Mapped[datetime] = _now()
    __table_args__ = (Index("ix_items_operation_seq", "operation_id", "seq"),)


class BulkOperationEvent(Base):
    """The audit trail: one row per state change or control action of an operation."""

    __tablename__ = "bulk_operation_events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    operation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bulk_operations.id", ondelete="CASCADE"))
    # Unique within the operation: what makes a retried write a no-op.
    event_key: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(32))
    actor_key_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    actor_name: Mapped[str | None] = mapped_column(String(200))
    # The person acted as, and the key or console session acted through.
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    actor_key_name: Mapped[str | None] = mapped_column(String(100))
    actor_session_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    at: Mapped[datetime] = _now()
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    __table_args__ = (UniqueConstraint("operation_id", "event_key", name="uq_events_operation_key"),)


class BulkStream(Base):
    """One open event stream of a tenant, in whichever API process serves it; a row whose
    `expires_at` passed (its process died without giving it back) no longer counts."""

    __tablename__ = "bulk_streams"
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    opened_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_bulk_streams_tenant", "tenant_id", "expires_at"),)


# Core handles for statements that need no ORM objects (typed as Table for insert/update/delete).
TENANTS = cast(Table, Tenant.__table__)
API_KEYS = cast(Table, ApiKey.__table__)
USERS = cast(Table, User.__table__)
CONSOLE_SESSIONS = cast(Table, ConsoleSessionRow.__table__)
ORDERS = cast(Table, Order.__table__)
REFUNDS = cast(Table, Refund.__table__)
OPERATIONS = cast(Table, BulkOperation.__table__)
TARGETS = cast(Table, BulkOperationTarget.__table__)
ITEMS = cast(Table, BulkOperationItem.__table__)
EVENTS = cast(Table, BulkOperationEvent.__table__)
STREAMS = cast(Table, BulkStream.__table__)


def not_terminal(operations: Any = OPERATIONS) -> ColumnElement[bool]:
    """Rows of operations still running (or waiting), of `operations` or an alias of it. Spelled like
    the partial index's predicate (sorted), so that the planner can use that index."""
    return operations.c.status.notin_(sorted(s.value for s in TERMINAL_STATUSES))


# What the sweep, limits and status writes look at.
NOT_TERMINAL = not_terminal()
