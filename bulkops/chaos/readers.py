"""Readers that watch the operations throughout: a poller of `GET /v1/bulk-operations/{id}` over
both API processes, and followers of the event streams that reconnect when a stream breaks. Each
keeps what it saw, so that a counter going backwards or a status after a terminal one is caught."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bulkops.chaos.book import Book, SeenOperation
from bulkops.chaos.client import Gateway
from bulkops.domain.model import TERMINAL_STATUSES, OperationStatus

log = logging.getLogger(__name__)
COUNTERS = ("processed_count", "success_count", "failed_count")


@dataclass
class Sightings:
    """One reader's view of one operation over time, checked as it arrives."""

    last: dict[str, Any] | None = None
    count: int = 0
    violations: list[str] = field(default_factory=list)

    def see(self, view: dict[str, Any], who: str) -> None:
        self.count += 1
        last, self.last = self.last, view
        if last is None:
            return
        for name in COUNTERS:
            if view[name] < last[name]:
                self.violations.append(f"{who} {view['id']}: {name} {last[name]} -> {view[name]}")
        if OperationStatus(last["status"]) in TERMINAL_STATUSES and view["status"] != last["status"]:
            self.violations.append(f"{who} {view['id']}: status {last['status']} -> {view['status']}")


@dataclass
class ReaderLog:
    sightings: dict[tuple[str, str], Sightings] = field(default_factory=dict)
    read_latencies_s: list[float] = field(default_factory=list)
    streams_completed: int = 0
    stream_reconnects: int = 0

    def see(self, reader: str, view: dict[str, Any]) -> None:
        self.sightings.setdefault((reader, view["id"]), Sightings()).see(view, reader)

    @property
    def checks(self) -> int:
        return sum(s.count for s in self.sightings.values())

    @property
    def violations(self) -> list[str]:
        return [v for s in self.sightings.values() for v in s.violations]


async def poll(
    gw: Gateway, book: Book, key_of: Callable[[SeenOperation], str], log_: ReaderLog, stop: asyncio.Event
) -> None:
    """Read every operation until the poller has seen its final summary, round after round, until
    `stop`."""
    final: set[str] = set()
    # Each view's ETag, sent back: an API process whose last answer is behind says 304 instead.
    tags: dict[str, str] = {}
    while not stop.is_set():
        for op in [op for op in book.operations.values() if op.id not in final]:
            started = time.monotonic()
            path, tag = f"/v1/bulk-operations/{op.id}", tags.get(op.id)
            r = await gw.call("GET", path, key_of(op), "GET operation", if_none_match=tag)
            if r is not None and r.status_code in (200, 304):
                log_.read_latencies_s.append(time.monotonic() - started)
            if r is not None and r.status_code == 200:
                tags[op.id] = r.headers["etag"]
                view = r.json()
                log_.see("poller", view)
                op.saw(view)
                if view["progress_source"] == "final":
                    final.add(op.id)
        await asyncio.sleep(0.5)


async def follow(
    gw: Gateway, op: SeenOperation, key: str, log_: ReaderLog, stop: asyncio.Event, max_reconnects: int = 40
) -> None:
    """Follow one operation's event stream to its `completed` event, reconnecting (with
    Last-Event-ID) whenever the stream breaks or ends early; bounded in reconnects."""
    last_id: str | None = None
    reader = f"stream-{op.id[:8]}"
    for _ in range(max_reconnects):
        headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        event, data, event_id = "", "", None
        with contextlib.suppress(httpx.HTTPError, json.JSONDecodeError):
            async with gw.client().stream(
                "GET", f"/v1/bulk-operations/{op.id}/events", headers=headers, timeout=30
            ) as r:
                gw.journal.record_response("GET events", r)
                if r.status_code == 200:
                    async for line in r.aiter_lines():
                        if stop.is_set():
                            return  # the soak is over: what was seen so far is checked
                        if line.startswith("event:"):
                            event = line[6:].strip()
                        elif line.startswith("data:"):
                            data += line[5:].strip()
                        elif line.startswith("id:"):
                            event_id = line[3:].strip()
                        elif line == "" and data:
                            log_.see(reader, json.loads(data))
                            last_id = event_id or last_id
                            if event == "completed":
                                log_.streams_completed += 1
                                return
                            event, data = "", ""
        if stop.is_set():
            return
        log_.stream_reconnects += 1
        await asyncio.sleep(1.0)
    log.warning("gave up following %s after %d reconnects", op.id, max_reconnects)
