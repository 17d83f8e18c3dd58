"""Heartbeats for an activity that may await one long statement: they flow while the attempt lives,
so the server notices one that died by its heartbeat timeout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

BEATS_PER_TIMEOUT = 4  # a beat or two may be late (a busy event loop) without the attempt timing out


@contextlib.asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    """Beat while the body runs, `BEATS_PER_TIMEOUT` times within the heartbeat timeout its caller
    gave this attempt (none given: nothing to beat for)."""
    timeout = activity.info().heartbeat_timeout
    if not timeout:
        yield
        return

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(timeout.total_seconds() / BEATS_PER_TIMEOUT)

    beats = asyncio.create_task(beat())
    try:
        yield
    finally:
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats
