"""New operation: the form, then the dry run of what it describes; only the explicit confirm on the
preview starts it (a `fetch` to `POST /v1/bulk-operations` with the body shown and an Idempotency-Key)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import MultiDict

from api.console.forms import FormError, create_body, order_ids
from api.console.render import Console, ConsoleDep, checked_form, page
from api.deps import ControlsDep, OperationsDep
from api.problems import Problem
from bulkops.domain.approval import Prediction
from bulkops.domain.model import DEFAULT_MAX_CONCURRENCY, ORDER_FIELDS, OperationType, OrderStatus

router = APIRouter(prefix="/console", include_in_schema=False)


def _form_page(request: Request, console: Console, values: MultiDict, **context: Any) -> Response:
    return page(
        request,
        "new.html",
        console,
        nav="new",
        v=values,
        types=list(OperationType),
        order_statuses=list(OrderStatus),
        order_fields=ORDER_FIELDS,
        default_concurrency=DEFAULT_MAX_CONCURRENCY,
        **context,
    )


def _require_create(console: Console) -> None:
    if not console.may("create"):
        raise Problem(403, "this API key may read operations but not start them")


@router.get("/operations/new", response_class=HTMLResponse)
async def new_form(request: Request, console: ConsoleDep) -> Response:
    _require_create(console)
    return _form_page(request, console, MultiDict())


@router.post("/operations/new", response_class=HTMLResponse)
async def preview(
    request: Request, console: ConsoleDep, service: OperationsDep, controls: ControlsDep
) -> Response:
    _require_create(console)
    form = await checked_form(request, console)
    values = MultiDict([(k, v) for k, v in form.multi_items() if isinstance(v, str)])
    try:
        ids_text = await order_ids(form)
        values.setlist("order_ids", [ids_text])
        body, model = create_body(form, ids_text)
    except FormError as exc:
        return _form_page(request, console, values, status_code=422, errors=exc.messages)
    tenant = console.principal.tenant_id
    dry = await service.dry_run(tenant, model)
    # The tenant's policy against this prediction: the same rule the create applies.
    policy = await controls.policy(tenant)
    reasons = policy.approval_reasons(model.operation_type, Prediction.model_validate(dry.model_dump()))
    return _form_page(
        request,
        console,
        values,
        preview=dry,
        body=body,
        idempotency_key=str(uuid.uuid4()),
        refund_total=dry.predicted_refund_cents
        if model.operation_type == OperationType.BULK_REFUND
        else None,
        approval_reasons=reasons,
    )
