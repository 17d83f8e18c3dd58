"""`GET /v1/bulk-operations/{id}/events`: live progress as Server-Sent Events.

While the operation runs, the stream reads the operation as `GET …/{id}` does (the workflow's
`progress` query, else the row's checkpoint) and sends a `progress` event (the `BulkOperation` JSON)
whenever the counters, the status or their source changed, at most a few a second.
Once the summary row is terminal it sends exactly one `completed` event with the summary and ends.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import BaseUrlDep, PrincipalDep, ServiceDep, SettingsDep
from api.problems import Problem
from bulkops.domain.representation import BulkOperationRead
from bulkops.service.errors import NotFound
from bulkops.service.operations import OperationService

router = APIRouter(prefix="/v1/bulk-operations", tags=["operations"])
log = logging.getLogger(__name__)

POLL_SECONDS = 0.25  # the throttle: at most four progress events a second
PING_SECONDS = 15  # keeps idle proxies from closing a stream whose counters do not move


def _key(view: BulkOperationRead) -> tuple[Any, ...]:
    return (
        view.status,
        view.progress_source,
        view.total_count,
        view.processed_count,
        view.success_count,
        view.failed_count,
    )


async def progress_events(
    service: OperationService, row: Any, base: str, *, poll: float = POLL_SECONDS
) -> AsyncIterator[ServerSentEvent]:
    last: tuple[Any, ...] | None = None
    while True:
        # The same read as `GET …/{id}`: live, else the row's checkpoint, never backwards.
        view = await service.observe(row, base)
        if view.progress_source == "final":
            yield ServerSentEvent(data=view.model_dump_json(), event="completed", id="end")
            return
        if _key(view) != last:
            last = _key(view)
            yield ServerSentEvent(data=view.model_dump_json(), event="progress", id=str(view.processed_count))
        await asyncio.sleep(poll)
        try:
            row = await service.get_row(row.tenant_id, row.id)
        except NotFound:
            raise
        except Exception as exc:  # Postgres briefly unreachable: keep the stream, try again next tick
            log.warning("events for %s: summary row unavailable: %s", row.id, exc)


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
    service: ServiceDep,
    settings: SettingsDep,
    base: BaseUrlDep,
) -> EventSourceResponse:
    try:
        row = await service.get_row(principal.tenant_id, operation_id)
    except NotFound:
        raise Problem(404, "no such bulk operation") from None
    return EventSourceResponse(progress_events(service, row, base), ping=PING_SECONDS)
