"""`GET /v1/bulk-operations/{id}/events`: live progress as Server-Sent Events.

While the operation runs, the stream sends a `progress` event (the `BulkOperation` JSON) whenever
the counters, the status or their source changed, at most four a second: every stream of one
operation follows one shared poller, which reads it as `GET …/{id}` does (the workflow's `progress`
query, else the row's checkpoint). Once the summary row is terminal it sends exactly one `completed`
event with the summary and ends. A tenant has at most BULKOPS_MAX_STREAMS_PER_TENANT streams open
(429 with Retry-After beyond); a stream ends after BULKOPS_STREAM_MAX_S, and the client reconnects
with `Last-Event-ID` (the view it last saw is not sent again); a comment every BULKOPS_STREAM_PING_S
keeps idle proxies from closing it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import BaseUrlDep, OperationsDep, PrincipalDep, SettingsDep
from api.responses import event_stream
from bulkops.service.operations import OperationService

router = APIRouter(prefix="/v1/bulk-operations", tags=["operations"])

RECONNECT_MS = 1000  # what an EventSource waits before it reconnects after a stream ends


async def progress_events(
    service: OperationService,
    row: Any,
    base: str,
    *,
    last_event_id: str | None = None,
    max_s: float | None = None,
) -> AsyncIterator[ServerSentEvent]:
    """`progress` events as the operation's shared feed changes, then one `completed` event. After
    `max_s` the stream just ends: the client reconnects (the `retry` field), sending the last id it
    saw, and is not sent that same view again."""
    deadline = None if max_s is None else time.monotonic() + max_s
    views = service.follow(row, base)
    try:
        while True:
            wait = None if deadline is None else deadline - time.monotonic()
            try:
                async with asyncio.timeout(wait):
                    view = await anext(views)
            except (TimeoutError, StopAsyncIteration):
                return
            if view.progress_source == "final":
                yield ServerSentEvent(data=view.model_dump_json(), event="completed", id="end")
                return
            event_id = str(view.processed_count)
            if event_id != last_event_id:
                last_event_id = None
                yield ServerSentEvent(
                    data=view.model_dump_json(), event="progress", id=event_id, retry=RECONNECT_MS
                )
    finally:
        await views.aclose()  # type: ignore[attr-defined]


@router.get(
    "/{operation_id}/events",
    name="events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`progress` events, then one `completed` event; the stream then ends",
        }
    },
)
async def operation_events(
    operation_id: uuid.UUID,
    principal: PrincipalDep,
    service: OperationsDep,
    settings: SettingsDep,
    base: BaseUrlDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    row = await service.get_row(principal.tenant_id, operation_id)
    events = progress_events(service, row, base, last_event_id=last_event_id, max_s=settings.stream_max_s)
    return await event_stream(service.feeds, principal.tenant_id, events, settings.stream_ping_s)
