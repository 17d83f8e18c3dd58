"""The console's pages: sign-in and sign-out, the operations list and its live stream. Data comes
from the same service calls and route functions as `/v1`; actions go to `/v1`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.console.oidc import oidc
from api.console.render import ConsoleDep, checked_form, page, safe_next
from api.deps import OperationsDep, SettingsDep
from api.responses import event_stream
from api.routers.events import progress_events
from api.routers.operations import list_operations
from api.session import sessions
from bulkops.domain.model import OperationStatus, OperationType
from bulkops.service.errors import NotFound
from bulkops.settings import Settings

router = APIRouter(prefix="/console", include_in_schema=False)
log = logging.getLogger(__name__)
PAGE_SIZE = 25


@router.get("")
async def home() -> RedirectResponse:
    return RedirectResponse("/console/operations", status_code=303)


def _sign_in_ways(request: Request, settings: Settings) -> dict[str, Any]:
    """What the sign-in page offers: the identity provider (when configured) and the API key form
    (unless BULKOPS_CONSOLE_KEY_SIGNIN=false)."""
    client = oidc(request)
    return {"oidc_name": client.name if client else None, "key_signin": settings.console_key_signin}


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, settings: SettingsDep, next: str = "") -> Response:
    store = sessions(request)
    session = store.read(request) or store.new()
    response = page(
        request,
        "login.html",
        None,
        csrf=store.csrf_token(session),
        next=safe_next(next),
        **_sign_in_ways(request, settings),
    )
    store.set_cookie(request, response, session)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    settings: SettingsDep,
    api_key: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    store = sessions(request)
    ways = _sign_in_ways(request, settings)
    if not settings.console_key_signin:
        return page(
            request,
            "login.html",
            None,
            status_code=403,
            next=safe_next(next),
            error="Signing in with an API key is turned off for this console.",
            **ways,
        )
    visitor = store.read(request)
    if visitor is None or not store.csrf_ok(visitor, csrf_token):
        fresh = store.new()
        response = page(
            request,
            "login.html",
            None,
            status_code=403,
            csrf=store.csrf_token(fresh),
            next=safe_next(next),
            error="The form had expired. Please sign in again.",
            **ways,
        )
        store.set_cookie(request, response, fresh)
        return response
    services = request.app.state.services
    principal = await services.authenticate(api_key.strip())
    if principal is None or principal.service:
        response = page(
            request,
            "login.html",
            None,
            status_code=401,
            csrf=store.csrf_token(visitor),
            next=safe_next(next),
            error="That API key is not valid."
            if principal is None
            else "A service key cannot sign in to the console: use a personal key.",
            **ways,
        )
        return response
    session_id = await services.people.sign_in_with_key(principal)
    # A new cookie id at sign-in: a token seen before it is worth nothing after it.
    redirect = RedirectResponse(safe_next(next), status_code=303)
    store.set_cookie(request, redirect, store.new(session_id))
    return redirect


@router.post("/logout")
async def logout(request: Request, console: ConsoleDep) -> Response:
    """Sign out: the session ends on the server (a copy of its cookie is worth nothing from now on);
    with `everywhere` set, every console session of this person ends."""
    form = await checked_form(request, console)
    services = request.app.state.services
    if form.get("everywhere"):
        assert console.principal.user_id is not None  # a console session always has its person
        await services.sessions.end_all_for_user(console.principal.user_id)
    elif console.session.session_id is not None:
        await services.sessions.end(console.session.session_id)
    store = sessions(request)
    response = RedirectResponse("/console/login", status_code=303)
    store.set_cookie(request, response, store.new())
    return response


@router.get("/operations", response_class=HTMLResponse)
async def operations_list(
    request: Request,
    console: ConsoleDep,
    service: OperationsDep,
    settings: SettingsDep,
    status: Annotated[str, Query(max_length=40)] = "",
    operation_type: Annotated[str, Query(max_length=40)] = "",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE)] = PAGE_SIZE,
) -> Response:
    chosen_status = OperationStatus(status) if status in OperationStatus.__members__ else None
    chosen_type = OperationType(operation_type) if operation_type in OperationType.__members__ else None
    result = await list_operations(
        console.principal,
        service,
        settings,
        "",
        status=chosen_status,
        operation_type=chosen_type,
        limit=limit,
        cursor=cursor,
    )
    shown = {"status": status, "operation_type": operation_type, "limit": limit if limit != PAGE_SIZE else ""}
    filters = {k: v for k, v in shown.items() if v}
    return page(
        request,
        "operations.html",
        console,
        nav="operations",
        page=result,
        statuses=list(OperationStatus),
        types=list(OperationType),
        status=status,
        operation_type=operation_type,
        cursor=cursor,
        first_url="/console/operations?" + urlencode(filters),
        next_url="/console/operations?" + urlencode({**filters, "cursor": result.next_cursor or ""}),
        stream_url="/console/operations/stream",
    )


async def _merged(streams: list[AsyncIterator[ServerSentEvent]]) -> AsyncIterator[ServerSentEvent]:
    """The events of several operations' progress streams on one connection (a browser opens only a
    few connections to one host), then one `done` event once every operation has ended. When the
    streams end for their time limit instead, so does this one, and the browser reconnects."""
    queue: asyncio.Queue[ServerSentEvent | bool] = asyncio.Queue()

    async def pump(stream: AsyncIterator[ServerSentEvent]) -> None:
        completed = False
        try:
            async for event in stream:
                completed = event.event == "completed"
                await queue.put(event)
        except Exception as exc:
            log.warning("console list stream: %s", exc)
        finally:
            await queue.put(completed)

    tasks = [asyncio.create_task(pump(s)) for s in streams]
    try:
        running, all_completed = len(tasks), True
        while running:
            event = await queue.get()
            if isinstance(event, bool):
                running, all_completed = running - 1, all_completed and event
            else:
                yield event
        if all_completed:
            yield ServerSentEvent(data="{}", event="done")
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)


@router.get("/operations/stream")
async def operations_stream(
    console: ConsoleDep,
    service: OperationsDep,
    settings: SettingsDep,
    id: Annotated[list[uuid.UUID], Query(max_length=PAGE_SIZE)],
) -> EventSourceResponse:
    """The list's live bars: the API's event stream of each operation shown, on one connection that
    counts as one of the tenant's open streams and lasts as long as one."""
    tenant = console.principal.tenant_id
    rows = []
    for operation_id in dict.fromkeys(id):
        try:
            rows.append(await service.get_row(tenant, operation_id))
        except NotFound:
            continue  # not this tenant's (or gone): nothing is sent about it
    feeds = [progress_events(service, row, "", max_s=settings.stream_max_s) for row in rows]
    return await event_stream(service.feeds, tenant, _merged(feeds), settings.stream_ping_s)
