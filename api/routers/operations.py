"""`/v1/bulk-operations`: create, list, read, items and retry (the controls: `api.routers.controls`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy import literal, select, tuple_

from api.deps import BaseUrlDep, OperatorDep, PrincipalDep, ServiceDep, SessionmakerDep, SettingsDep
from api.problems import Problem, limit_problem
from api.schemas import BulkOperationPage, ItemPage, ItemRead
from bulkops.domain.model import ItemStatus, OperationStatus, OperationType
from bulkops.domain.representation import BulkOperationRead, DryRunRead, operation_view
from bulkops.domain.requests import BulkOperationCreate
from bulkops.infra.metrics import record_started
from bulkops.infra.netpolicy import UnsafeUrl
from bulkops.service.limits import LimitExceeded
from bulkops.service.operations import Conflict, NotFound
from bulkops.store.pagination import BadCursor, decode_cursor, encode_cursor
from bulkops.store.tables import ITEMS, OPERATIONS

router = APIRouter(prefix="/v1/bulk-operations", tags=["bulk operations"])
OPS = OPERATIONS
NOT_FOUND = "no such bulk operation"

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=500)]


async def _row(service: Any, tenant_id: str, operation_id: uuid.UUID) -> Any:
    try:
        return await service.get_row(tenant_id, operation_id)
    except NotFound:
        raise Problem(404, NOT_FOUND) from None


@router.post(
    "",
    status_code=202,
    response_model=BulkOperationRead,
    responses={200: {"model": DryRunRead, "description": "a dry run, or a repeated Idempotency-Key"}},
)
async def create_operation(
    body: BulkOperationCreate,
    principal: OperatorDep,
    service: ServiceDep,
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
    except Conflict as exc:
        raise Problem(409, str(exc)) from None
    except LimitExceeded as exc:
        raise limit_problem(exc) from None
    except UnsafeUrl as exc:
        error = {"loc": ["body", "notify_url"], "msg": str(exc), "type": "unsafe_url"}
        raise Problem(422, f"notify_url: {exc}", errors=[error]) from None
    if accepted.created:
        record_started(accepted.row.operation_type)
    view = operation_view(accepted.row, settings, base=base)
    return JSONResponse(
        view.model_dump(mode="json"),
        status_code=202 if accepted.created else 200,
        headers={"Location": view.links.self},
    )


@router.get("", response_model=BulkOperationPage)
async def list_operations(
    principal: PrincipalDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    base: BaseUrlDep,
    status: OperationStatus | None = None,
    operation_type: OperationType | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> BulkOperationPage:
    stmt = select(OPS).where(OPS.c.tenant_id == principal.tenant_id)
    if status:
        stmt = stmt.where(OPS.c.status == status.value)
    if operation_type:
        stmt = stmt.where(OPS.c.operation_type == operation_type.value)
    if cursor:
        try:
            created, last_id = decode_cursor(cursor, 2)
            key = (datetime.fromisoformat(created), uuid.UUID(last_id))
            stmt = stmt.where(tuple_(OPS.c.created_at, OPS.c.id) < tuple_(*map(literal, key)))
        except (BadCursor, ValueError, TypeError):
            raise Problem(400, "cursor is not valid") from None
    stmt = stmt.order_by(OPS.c.created_at.desc(), OPS.c.id.desc()).limit(limit + 1)
    async with sessionmaker() as session:
        rows = (await session.execute(stmt)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return BulkOperationPage(
        items=[operation_view(r, settings, base=base) for r in rows],
        next_cursor=encode_cursor(rows[-1].created_at.isoformat(), rows[-1].id) if more else None,
    )


@router.get("/{operation_id}", response_model=BulkOperationRead)
async def get_operation(
    operation_id: uuid.UUID,
    principal: PrincipalDep,
    service: ServiceDep,
    settings: SettingsDep,
    base: BaseUrlDep,
) -> BulkOperationRead:
    row, live = await service.current(await _row(service, principal.tenant_id, operation_id))
    return operation_view(row, settings, live=live, base=base)


@router.get("/{operation_id}/items", response_model=ItemPage)
async def list_items(
    operation_id: uuid.UUID,
    principal: PrincipalDep,
    service: ServiceDep,
    sessionmaker: SessionmakerDep,
    status: ItemStatus | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> ItemPage:
    await _row(service, principal.tenant_id, operation_id)
    stmt = select(ITEMS).where(ITEMS.c.operation_id == operation_id)
    if status:
        stmt = stmt.where(ITEMS.c.status == status.value)
    if cursor:
        try:
            (after,) = decode_cursor(cursor, 1)
            # `seq` is a 32-bit column: a forged huge number must be a 400, not a database error.
            if not isinstance(after, int) or not 0 <= after < 2**31:
                raise BadCursor("cursor is not valid")
            stmt = stmt.where(ITEMS.c.seq > after)
        except (BadCursor, ValueError, TypeError):
            raise Problem(400, "cursor is not valid") from None
    async with sessionmaker() as session:
        rows = (await session.execute(stmt.order_by(ITEMS.c.seq).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return ItemPage(
        items=[ItemRead.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=encode_cursor(rows[-1].seq) if more else None,
    )


@router.post("/{operation_id}/retry", status_code=202, response_model=BulkOperationRead)
async def retry(
    operation_id: uuid.UUID,
    principal: OperatorDep,
    service: ServiceDep,
    settings: SettingsDep,
    base: BaseUrlDep,
    all_failed: bool = False,
) -> Response:
    try:
        row = await service.retry(
            principal.tenant_id,
            operation_id,
            all_failed=all_failed,
            initiated_by=principal.initiated_by,
            actor=principal.actor,
        )
    except NotFound:
        raise Problem(404, NOT_FOUND) from None
    except Conflict as exc:
        raise Problem(409, str(exc)) from None
    except LimitExceeded as exc:
        raise limit_problem(exc) from None
    record_started(row.operation_type)
    view = operation_view(row, settings, base=base)
    return JSONResponse(view.model_dump(mode="json"), status_code=202, headers={"Location": view.links.self})
