"""The public `BulkOperation` resource, the `progress` query's answer and the dry-run prediction, and
how a summary row (plus, while running, the live query) becomes a `BulkOperation`.

They are sent by the API, by the completion webhook and shown as an approval's prediction, so they
belong to the domain rather than to one edge.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from bulkops.domain.approval import Approval
from bulkops.domain.model import Counters, ErrorSample, OperationStatus, OperationType
from bulkops.domain.people import Actor
from bulkops.domain.records import OperationRecord
from bulkops.domain.requests import FailureThreshold


class UiLinks(Protocol):
    def operation_ui_url(self, workflow_id: str) -> str: ...


class Links(BaseModel):
    self: str
    items: str
    events: str
    audit: str
    export: str | None = None
    temporal_ui: str


# Where an answer's counters come from: the workflow's query (`live`), the row's checkpoint while the
# query cannot answer (`checkpoint`), or the summary of an operation that ended (`final`).
ProgressSource = Literal["live", "checkpoint", "final"]


class BulkOperationRead(Counters):
    id: uuid.UUID
    tenant_id: str
    operation_type: OperationType
    status: OperationStatus
    percent_complete: float
    orders_per_second: float | None
    eta_seconds: float | None
    parameters: dict[str, Any]
    selection: dict[str, Any]
    max_concurrency: int
    failure_threshold: FailureThreshold | None
    failure_reason: str | None
    initiated_by: str | None
    created_by: Actor | None = None
    retry_of: uuid.UUID | None
    revert_of: uuid.UUID | None = None
    start_at: datetime | None = None
    max_orders_per_second: float | None = None
    approval: Approval | None = None
    notify_url: str | None = None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    progress_source: ProgressSource
    progress_at: datetime | None
    workflow_id: str
    links: Links

    @property
    def started_by(self) -> str | None:
        """Who created it, as the console names them: the person and the key or session."""
        return (self.created_by.label if self.created_by else None) or self.initiated_by


class DryRunRead(BaseModel):
    dry_run: Literal[True] = True
    operation_type: OperationType
    matched_count: int
    would_fail_count: int
    would_fail_by_code: dict[str, int]
    predicted_refund_cents: int = 0
    sample: list[dict[str, Any]]


class Progress(Counters):
    """The `progress` query's answer, and the shape pause/resume/cancel updates return."""

    operation_id: uuid.UUID
    tenant_id: str
    operation_type: OperationType
    status: OperationStatus
    in_flight: int
    failure_reason: str | None
    started_at: datetime | None
    active_seconds: float
    resumed_at: datetime | None
    run: int
    history_length: int
    max_run_history: int


def _links(row: OperationRecord, settings: UiLinks, base: str) -> Links:
    me = f"{base}/v1/bulk-operations/{row.id}"
    return Links(
        self=me,
        items=f"{me}/items",
        events=f"{me}/events",
        audit=f"{me}/audit",
        export=f"{me}/export" if row.operation_type == OperationType.BULK_EXPORT else None,
        temporal_ui=settings.operation_ui_url(row.workflow_id),
    )


def operation_view(
    row: OperationRecord,
    settings: UiLinks,
    *,
    live: Progress | None = None,
    base: str = "",
    now: datetime | None = None,
) -> BulkOperationRead:
    """The row's summary once ended (`final`), the live counters while running, else the row's
    checkpoint (the counters as the workflow last wrote them, true as of `progress_at`)."""
    now = now or datetime.now(UTC)
    status = row.status
    source: ProgressSource = "final" if status.terminal else "checkpoint"
    progress_at = row.completed_at if status.terminal else row.progress_at
    total, processed, ok, failed = row.total_count, row.processed_count, row.success_count, row.failed_count
    errors = [ErrorSample.model_validate(e) for e in row.errors or []]
    failure_reason, started_at = row.failure_reason, row.started_at
    rate: float | None = None
    if live is not None and not status.terminal:
        source, progress_at = "live", now
        status = live.status
        total, processed, ok, failed = (
            # An id list's count is on the row from the start; a waiting operation's selection is
            # snapshotted (and counted by the workflow) only once it gets its slot.
            live.total_count or total,
            live.processed_count,
            live.success_count,
            live.failed_count,
        )
        errors, failure_reason, started_at = live.errors, live.failure_reason, live.started_at or started_at
        active = live.active_seconds
        if live.resumed_at is not None:
            active += max((now - live.resumed_at).total_seconds(), 0.0)
        rate = processed / active if active > 0 and processed else None
    elif status.terminal and row.started_at and row.completed_at:
        elapsed = (row.completed_at - row.started_at).total_seconds()
        rate = processed / elapsed if elapsed > 0 else None
    eta: float | None = None
    if status.terminal:
        eta = 0.0
    elif rate:
        eta = round((total - processed) / rate, 1)
    return BulkOperationRead(
        id=row.id,
        tenant_id=row.tenant_id,
        operation_type=row.operation_type,
        status=status,
        total_count=total,
        processed_count=processed,
        success_count=ok,
        failed_count=failed,
        percent_complete=round(100.0 * processed / total, 2)
        if total
        else (100.0 if status.terminal else 0.0),
        orders_per_second=round(rate, 2) if rate else None,
        eta_seconds=eta,
        parameters=row.parameters,
        selection=row.selection,
        max_concurrency=row.max_concurrency,
        failure_threshold=FailureThreshold.model_validate(row.failure_threshold)
        if row.failure_threshold
        else None,
        failure_reason=failure_reason,
        errors=errors,
        initiated_by=row.initiated_by,
        created_by=Actor.model_validate(row.created_by) if row.created_by else None,
        retry_of=row.retry_of,
        revert_of=row.revert_of,
        start_at=row.start_at,
        max_orders_per_second=row.max_orders_per_second,
        approval=Approval.model_validate(row.approval) if row.approval else None,
        notify_url=row.notify_url,
        created_at=row.created_at,
        started_at=started_at,
        completed_at=row.completed_at,
        progress_source=source,
        progress_at=progress_at,
        workflow_id=row.workflow_id,
        links=_links(row, settings, base),
    )


# A view's place in its operation's progress, as an entity tag (weak: the rate and ETA may differ).
_TAG = re.compile(r'W/"(\d+)\.(\d+)\.(\d+)\.([A-Z_]+)"')


def progress_tag(view: BulkOperationRead) -> str:
    """The `ETag` of a view of an operation: its counters and status. A reader that sends it back
    (`If-None-Match`) is never answered a view behind it, whichever API process answers."""
    return f'W/"{view.processed_count}.{view.success_count}.{view.failed_count}.{view.status.value}"'


def not_newer_than(view: BulkOperationRead, tag: str) -> bool:
    """Whether `view` tells nothing the holder of `tag` does not know: no counter ahead of it while
    any is behind (each API process keeps its own floor; a reader that alternates between them may
    meet one whose last answer is the older checkpoint), or the very same counters and status, or
    `tag` says the operation has ended. A tag that is not ours matches nothing."""
    found = _TAG.fullmatch(tag.strip())
    if found is None or found.group(4) not in OperationStatus.__members__:
        return False
    seen = (int(found.group(1)), int(found.group(2)), int(found.group(3)))
    seen_status = OperationStatus(found.group(4))
    now = (view.processed_count, view.success_count, view.failed_count)
    if seen_status.terminal:
        return True
    if any(n < s for n, s in zip(now, seen, strict=True)):
        return True
    return now == seen and view.status is seen_status
