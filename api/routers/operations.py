"""`/v1/bulk-operations`: create, list, read, items and retry (the controls: `api.routers.controls`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse

from api import responses
from api.deps import BaseUrlDep, IdempotencyKey, OperationsDep, OperatorDep, PrincipalDep, SettingsDep
from api.problems import Problem
from api.schemas import BulkOperationPage, ItemPage, ItemRead
from bulkops.domain.model import ItemStatus, OperationStatus, OperationType
from bulkops.domain.requests import BulkOperationCreate
from bulkops.domain.views import BulkOperationRead, DryRunRead, not_newer_than, operation_view, progress_tag
from bulkops.infra.netpolicy import UnsafeUrl

router = APIRouter(prefix="/v1/bulk-operations", tags=["operations"])

Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=500)]


@router.post(
    "",
    name="create",
    status_code=202,
    response_model=BulkOperationRead,
    responses={
        200: {
            "model": BulkOperationRead | DryRunRead,
            "description": "a dry run (`DryRunRead`), or the operation a repeated Idempotency-Key made",
        }
    },
)
async def create_operation(
    body: BulkOperationCreate,
    principal: OperatorDep,
    service: OperationsDep,
    settings: SettingsDep,
    base: BaseUrlDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    if body.dry_run:
        result = await service.dry_run(principal.tenant_id, body)
        return JSONResponse(result.model_dump(mode="json"), status_code=200)
    try:
        accepted = await service.create(
            principal.tenant_id,
            body,
            initiated_by=principal.initiated_by,
            idempotency_key=idempotency_key,
            actor=principal.actor,
        )
    except UnsafeUrl as exc:  # a refusal of one field, unlike the service's own (`api.problems`)
        error = {"loc": ["body", "notify_url"], "msg": str(exc), "type": "unsafe_url"}
        raise Problem(422, f"notify_url: {exc}", errors=[error]) from None
    return responses.accepted(accepted.row, settings, base, created=accepted.created)


@router.get("", name="list", response_model=BulkOperationPage)
async def list_operations(
    principal: PrincipalDep,
    service: OperationsDep,
    settings: SettingsDep,
    base: BaseUrlDep,
    status: OperationStatus | None = None,
    operation_type: OperationType | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> BulkOperationPage:
    rows, next_cursor = await service.list_operations(
        principal.tenant_id, status=status, operation_type=operation_type, limit=limit, cursor=cursor
    )
    return BulkOperationPage(
        items=[operation_view(r, settings, base=base) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/{operation_id}",
    name="get",
    response_model=BulkOperationRead,
    responses={
        304: {
            "description": "nothing newer than the view whose ETag came in If-None-Match: its counters "
            "are not behind this one's (a reader that sends it back never sees them go back, whichever "
            "API process answers)"
        }
    },
)
async def get_operation(
    operation_id: uuid.UUID,
    principal: PrincipalDep,
    service: OperationsDep,
    settings: SettingsDep,
    base: BaseUrlDep,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    view = await service.observe(await service.get_row(principal.tenant_id, operation_id), base)
    if if_none_match is not None and not_newer_than(view, if_none_match):
        return Response(status_code=304, headers={"ETag": if_none_match.strip()})
    return JSONResponse(view.model_dump(mode="json"), headers={"ETag": progress_tag(view)})


@router.get("/{operation_id}/items", name="items", response_model=ItemPage)
async def list_items(
    operation_id: uuid.UUID,
    principal: PrincipalDep,
    service: OperationsDep,
    status: ItemStatus | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> ItemPage:
    rows, next_cursor = await service.list_items(
        principal.tenant_id, operation_id, status=status, limit=limit, cursor=cursor
    )
    return ItemPage(
        items=[ItemRead.model_validate(r, from_attributes=True) for r in rows], next_cursor=next_cursor
    )


@router.post(
    "/{operation_id}/retry",
    name="retry",
    status_code=202,
    response_model=BulkOperationRead,
    responses={200: {"model": BulkOperationRead, "description": "a repeated Idempotency-Key"}},
)
async def retry(
    operation_id: uuid.UUID,
    principal: OperatorDep,
    service: OperationsDep,
    settings: SettingsDep,
    base: BaseUrlDep,
    all_failed: bool = False,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    accepted = await service.retry(
        principal.tenant_id,
        operation_id,
        all_failed=all_failed,
        initiated_by=principal.initiated_by,
        actor=principal.actor,
        idempotency_key=idempotency_key,
    )
    return responses.accepted(accepted.row, settings, base, created=accepted.created)
