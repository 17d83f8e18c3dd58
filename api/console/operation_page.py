"""One operation's page, and the approvals page: the same service calls as the API's reads; every
button on them posts to the API (`api.console.actions`)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.console.actions import controls, decisions
from api.console.render import ConsoleDep, page
from api.deps import ControlsDep, OperationsDep, SettingsDep
from api.problems import Problem
from api.routers.operations import list_items, list_operations
from bulkops.domain.approval import ApprovalStatus
from bulkops.domain.audit import AuditAction, AuditEventRead
from bulkops.domain.model import ItemStatus, OperationStatus
from bulkops.domain.views import BulkOperationRead
from bulkops.service.errors import NotFound

router = APIRouter(prefix="/console", include_in_schema=False)
FAILED_PAGE_SIZE = 20
APPROVALS_SHOWN = 100
# The audit trail's state changes, as the timeline shows them (the full trail is below it).
TIMELINE = {
    AuditAction.SCHEDULED: "Scheduled",
    AuditAction.APPROVED: "Approved",
    AuditAction.REJECTED: "Rejected",
    AuditAction.EXPIRED: "Approval expired",
    AuditAction.STARTED: "Started",
    AuditAction.PAUSED: "Paused",
    AuditAction.RESUMED: "Resumed",
    AuditAction.CANCELLED: "Cancel requested",
}


def _timeline(op: BulkOperationRead, audit: list[AuditEventRead]) -> list[tuple[str, Any]]:
    points: list[tuple[str, Any]] = [("Created", op.created_at)]
    points += [(TIMELINE[ev.action], ev.at) for ev in audit if ev.action in TIMELINE]
    if not any(label == "Started" for label, _ in points) and op.started_at:
        points.append(("Started", op.started_at))
    if op.completed_at:
        points.append((f"Ended ({op.status})", op.completed_at))
    return sorted(points, key=lambda p: p[1])


@router.get("/operations/{operation_id}", response_class=HTMLResponse)
async def operation_page(
    request: Request,
    operation_id: uuid.UUID,
    console: ConsoleDep,
    service: OperationsDep,
    control_service: ControlsDep,
    settings: SettingsDep,
    items_cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    try:
        row = await service.get_row(console.principal.tenant_id, operation_id)
        audit = await control_service.audit(console.principal.tenant_id, operation_id)
    except NotFound:
        raise Problem(404, "There is no such operation (or it is not your tenant's).") from None
    op = await service.observe(row)
    failed = await list_items(
        operation_id,
        console.principal,
        service,
        status=ItemStatus.FAILED,
        limit=FAILED_PAGE_SIZE,
        cursor=items_cursor,
    )
    breakdown = await service.failures_by_code(console.principal.tenant_id, operation_id)
    return page(
        request,
        "operation.html",
        console,
        nav="operations",
        op=op,
        events_url=op.links.events,
        actions=decisions(op, console) + controls(op, console, sum(r for _, _, r in breakdown)),
        timeline=_timeline(op, audit),
        breakdown=breakdown,
        failed=failed,
        items_cursor=items_cursor,
        export_url=op.links.export if op.links.export and op.status.terminal else None,
        audit=audit,
    )


@router.get("/approvals", response_class=HTMLResponse)
async def approvals(
    request: Request, console: ConsoleDep, service: OperationsDep, settings: SettingsDep
) -> Response:
    waiting = await list_operations(
        console.principal,
        service,
        settings,
        "",
        status=OperationStatus.AWAITING_APPROVAL,
        operation_type=None,
        limit=APPROVALS_SHOWN,
        cursor=None,
    )
    # The row says AWAITING_APPROVAL until the workflow moves on; a decision is on it at once.
    undecided = [op for op in waiting.items if op.approval and op.approval.status == ApprovalStatus.PENDING]
    rows = [{"op": op, "actions": decisions(op, console)} for op in undecided]
    return page(
        request, "approvals.html", console, nav="approvals", rows=rows, more=bool(waiting.next_cursor)
    )
