"""Live reads shared between readers: one progress query in flight per operation, one poller per
operation however many event streams follow it, and a per-tenant cap on open streams.

Readers that arrive while a query of the same operation is in flight wait for it and share its
answer; an answer younger than the freshness window (BULKOPS_PROGRESS_FRESH_S) is given again
without asking. That bounds the queries a workflow answers to about one per window, whatever the
number of readers. All of that is per API process; the cap on a tenant's open streams is not
(`bulkops.store.streams`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from cachetools import LRUCache
from sqlalchemy.ext.asyncio import async_sessionmaker

from bulkops.domain.views import BulkOperationRead
from bulkops.service.errors import NotFound
from bulkops.store import streams

log = logging.getLogger(__name__)
# Streams end when their operation ends or after BULKOPS_STREAM_MAX_S: a refused one may try again soon.
STREAM_RETRY_AFTER_S = 10


T = TypeVar("T")


class Coalesced(Generic[T]):
    """`get(key)`: the shared answer of one `fetch(key)` per key in flight, reused for `fresh_s`."""

    def __init__(self, fetch: Callable[[uuid.UUID], Awaitable[T]], fresh_s: float, size: int = 10_000):
        self.fetch = fetch
        self.fresh_s = fresh_s
        self.in_flight: dict[uuid.UUID, asyncio.Task[T]] = {}
        # Not a TTLCache: an answer past its freshness window still says when it was true (`answered_at`).
        self.answers: LRUCache[uuid.UUID, tuple[float, datetime, T]] = LRUCache(maxsize=size)

    async def get(self, key: uuid.UUID) -> T:
        hit = self.answers.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.fresh_s:
            return hit[2]
        task = self.in_flight.get(key)
        if task is None:
            task = asyncio.create_task(self._fetch(key))
            self.in_flight[key] = task
        # A reader that gives up (client gone) does not cancel the others' answer.
        return await asyncio.shield(task)

    def put(self, key: uuid.UUID, answer: T) -> None:
        """An answer learnt otherwise (a control's), newer than any fetched before it: given from now."""
        self.answers[key] = (time.monotonic(), datetime.now(UTC), answer)

    def answered_at(self, key: uuid.UUID) -> datetime | None:
        """When the answer last given for `key` was fetched (what it is true as of)."""
        hit = self.answers.get(key)
        return hit[1] if hit is not None else None

    async def _fetch(self, key: uuid.UUID) -> T:
        asked = time.monotonic()
        try:
            answer = await self.fetch(key)
        finally:
            self.in_flight.pop(key, None)
        held = self.answers.get(key)
        if held is None or held[0] < asked:  # never over an answer `put` while this one was asked
            self.answers[key] = (time.monotonic(), datetime.now(UTC), answer)
        return answer


def _key(view: BulkOperationRead) -> tuple[Any, ...]:
    return (
        view.status,
        view.progress_source,
        view.total_count,
        view.processed_count,
        view.success_count,
        view.failed_count,
    )


class Feed:
    """One operation's views as one poller reads them, handed to every stream that follows it.

    `observe()` reads the operation (as `GET …/{id}` does), `poll_s` apart; a view is published only
    when it changed, and the final view is the last one (the poller then ends). The poller stops
    when no stream follows it any more."""

    def __init__(self, observe: Callable[[], Awaitable[BulkOperationRead]], poll_s: float) -> None:
        self.observe = observe
        self.poll_s = poll_s
        self.latest: BulkOperationRead | None = None
        self.version = 0
        self.followers = 0
        self.done = False
        self.error: NotFound | None = None
        self.changed = asyncio.Condition()
        self.task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        try:
            while True:
                try:
                    view: BulkOperationRead | None = await self.observe()
                except NotFound as exc:
                    self.error = exc
                    return
                except Exception as exc:  # Postgres or Temporal briefly unreachable: again next tick
                    log.warning("progress feed: %s", exc)
                    view = None
                if view is not None:
                    if self.latest is None or _key(view) != _key(self.latest):
                        async with self.changed:
                            self.latest, self.version = view, self.version + 1
                            self.changed.notify_all()
                    if view.progress_source == "final":
                        return
                await asyncio.sleep(self.poll_s)
        finally:
            self.done = True
            async with self.changed:
                self.changed.notify_all()

    async def follow(self) -> AsyncIterator[BulkOperationRead]:
        self.followers += 1
        if self.task is None:
            self.task = asyncio.create_task(self._poll())
        seen = 0
        try:
            while True:
                async with self.changed:
                    while self.version <= seen and not self.done:
                        await self.changed.wait()
                    view, version = self.latest, self.version
                if version > seen and view is not None:
                    seen = version
                    yield view
                    if view.progress_source == "final":
                        return
                    continue
                if self.error is not None:
                    raise self.error
                return
        finally:
            self.followers -= 1
            if self.followers == 0 and self.task is not None and not self.task.done():
                self.task.cancel()


class TooManyStreams(Exception):
    def __init__(self, limit: int, retry_after_s: int) -> None:
        super().__init__(f"this tenant has {limit} event streams open (the most allowed); close one")
        self.retry_after_s = retry_after_s


class Feeds:
    """The feeds of this process (one per operation and link base), and the tenants' stream slots,
    which are counted in PostgreSQL so that the cap holds across API processes."""

    def __init__(
        self,
        poll_s: float,
        sessionmaker: async_sessionmaker,
        max_streams_per_tenant: int,
        stream_max_s: float,
    ) -> None:
        self.poll_s = poll_s
        self.sessionmaker = sessionmaker
        self.max_streams = max_streams_per_tenant
        self.stream_max_s = stream_max_s
        self.feeds: dict[tuple[uuid.UUID, str], Feed] = {}

    async def open_stream(self, tenant_id: str) -> uuid.UUID:
        """One of the tenant's stream slots, before any response starts; TooManyStreams (429) when
        all are held. The caller gives it back with `close_stream` when its response ends."""
        async with self.sessionmaker() as session, session.begin():
            slot = await streams.take_slot(session, tenant_id, self.max_streams, self.stream_max_s)
        if slot is None:
            raise TooManyStreams(self.max_streams, STREAM_RETRY_AFTER_S)
        return slot

    async def close_stream(self, slot: uuid.UUID) -> None:
        try:
            async with self.sessionmaker() as session, session.begin():
                await streams.give_back(session, slot)
        except Exception as exc:  # PostgreSQL away: the slot's lease expires on its own
            log.warning("stream slot %s not given back: %s", slot, exc)

    async def follow(
        self, operation_id: uuid.UUID, base: str, observe: Callable[[], Awaitable[BulkOperationRead]]
    ) -> AsyncIterator[BulkOperationRead]:
        key = (operation_id, base)
        feed = self.feeds.get(key)
        if feed is None or feed.done:
            feed = self.feeds[key] = Feed(observe, self.poll_s)
        try:
            async for view in feed.follow():
                yield view
        finally:
            if feed.followers == 0 and self.feeds.get(key) is feed:
                del self.feeds[key]
