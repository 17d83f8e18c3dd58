"""`/v1/bulk-operations/{id}/…`: the controls (pause, resume, cancel), four-eyes approval (approve,
reject), revert, and the audit trail. Each control is a workflow update sent as the calling key, who
the audit trail then names."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Body, Response

from api import responses
from api.deps import (
    ApproverDep,
    BaseUrlDep,
    ControlsDep,
    IdempotencyKey,
    OperatorDep,
    PrincipalDep,
    SettingsDep,
)
from bulkops.domain.audit import AuditPage
from bulkops.domain.views import BulkOperationRead, UiLinks, operation_view
from bulkops.service.auth import Principal
from bulkops.service.controls import ControlService

router = APIRouter(prefix="/v1/bulk-operations", tags=["operations"])


async def _control(
    name: str,
    operation_id: uuid.UUID,
    principal: Principal,
    controls: ControlService,
    settings: UiLinks,
    base: str,
    comment: str | None = None,
) -> BulkOperationRead:
    actor = principal.actor.model_copy(update={"comment": comment})
    row, live = await controls.control(principal.tenant_id, operation_id, name, actor)
    return operation_view(row, settings, live=live, base=base)


@router.post("/{operation_id}/pause", response_model=BulkOperationRead)
async def pause(
    operation_id: uuid.UUID,
    principal: OperatorDep,
    controls: ControlsDep,
    settings: SettingsDep,
    base: BaseUrlDep,
) -> BulkOperationRead:
    return await _control("pause", operation_id, principal, controls, settings, base)


@router.post("/{operation_id}/resume", response_model=BulkOperationRead)
async def resume(
    operation_id: uuid.UUID,
    principal: OperatorDep,
    controls: ControlsDep,
    settings: SettingsDep,
    base: BaseUrlDep,
) -> BulkOperationRead:
    return await _control("resume", operation_id, principal, controls, settings, base)


@router.post("/{operation_id}/cancel", response_model=BulkOperationRead)
async def cancel(
    operation_id: uuid.UUID,
    principal: OperatorDep,
    controls: ControlsDep,
    settings: SettingsDep,
    base: BaseUrlDep,
) -> BulkOperationRead:
    return await _control("cancel", operation_id, principal, controls, settings, base)


@router.post("/{operation_id}/approve", response_model=BulkOperationRead)
async def approve(
    operation_id: uuid.UUID,
    principal: ApproverDep,
    controls: ControlsDep,
    settings: SettingsDep,
    base: BaseUrlDep,
    comment: str | None = Body(default=None, embed=True, max_length=1000),
) -> BulkOperationRead:
    """Approve an operation that is `AWAITING_APPROVAL` (an approver key other than its creator's)."""
    return await _control("approve", operation_id, principal, controls, settings, base, comment)


@router.post("/{operation_id}/reject", response_model=BulkOperationRead)
async def reject(
    operation_id: uuid.UUID,
    principal: ApproverDep,
    controls: ControlsDep,
    settings: SettingsDep,
    base: BaseUrlDep,
    comment: str | None = Body(default=None, embed=True, max_length=1000),
) -> BulkOperationRead:
    """Reject an operation that is `AWAITING_APPROVAL`: it ends `CANCELLED` (`APPROVAL_REJECTED`)."""
    return await _control("reject", operation_id, principal, controls, settings, base, comment)


@router.post(
    "/{operation_id}/revert",
    status_code=202,
    response_model=BulkOperationRead,
    responses={200: {"model": BulkOperationRead, "description": "a repeated Idempotency-Key"}},
)
async def revert(
    operation_id: uuid.UUID,
    principal: OperatorDep,
    controls: ControlsDep,
    settings: SettingsDep,
    base: BaseUrlDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Start a new operation (`revert_of`) that restores, on every order this ended `BULK_UPDATE`
    succeeded on, the values it changed; an order changed since fails `ORDER_CHANGED_SINCE`. The
    same `Idempotency-Key` with the same request answers the operation it made (200)."""
    row, created = await controls.revert(
        principal.tenant_id, operation_id, principal.actor, principal.initiated_by, idempotency_key
    )
    return responses.accepted(row, settings, base, created=created)


@router.get("/{operation_id}/audit", response_model=AuditPage)
async def audit(operation_id: uuid.UUID, principal: PrincipalDep, controls: ControlsDep) -> AuditPage:
    """The operation's audit trail, oldest first: every state change and control action, and who."""
    return AuditPage(items=await controls.audit(principal.tenant_id, operation_id))
