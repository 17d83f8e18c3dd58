"""Answers more than one router gives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from bulkops.domain.records import OperationRecord
from bulkops.domain.views import UiLinks, operation_view
from bulkops.service.feeds import Feeds


def accepted(row: OperationRecord, settings: UiLinks, base: str, *, created: bool = True) -> JSONResponse:
    """A new operation: 202 with its `Location` (200 when an Idempotency-Key found an earlier one)."""
    view = operation_view(row, settings, base=base)
    return JSONResponse(
        view.model_dump(mode="json"),
        status_code=202 if created else 200,
        headers={"Location": view.links.self},
    )


class _SlotHeldStream(EventSourceResponse):
    """An event stream that gives its tenant's stream slot back when its response ends, however it
    ends: the client gone before the first event (the body's generator never started, so its own
    `finally` never runs), a HEAD request, a server shutting down."""

    def __init__(
        self, events: AsyncIterator[ServerSentEvent], feeds: Feeds, slot: Any, ping_s: float
    ) -> None:
        super().__init__(events, ping=ping_s)
        self.feeds, self.slot = feeds, slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.feeds.close_stream(self.slot)


async def event_stream(
    feeds: Feeds, tenant_id: str, events: AsyncIterator[ServerSentEvent], ping_s: float
) -> EventSourceResponse:
    """`events` as one of the tenant's open streams: a slot taken now (429 before any response
    starts when the tenant holds them all), given back when the response ends."""
    slot = await feeds.open_stream(tenant_id)
    return _SlotHeldStream(events, feeds, slot, ping_s)
