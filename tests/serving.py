"""The real app on a real socket: uvicorn on a free loopback port, for what httpx's ASGI transport
cannot do (it buffers a response until it ends: event streams) and for clients outside the test's loop
(the CLI, schemathesis, a browser)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from bulkops.devstack.postgres import free_port
from bulkops.settings import Settings


@contextlib.asynccontextmanager
async def serve(
    app: Settings | FastAPI, *, own_thread: bool = False, port: int | None = None
) -> AsyncIterator[tuple[str, FastAPI]]:
    """Serve until the block ends; yields (base URL, app) once uvicorn has started.

    Given Settings, a fresh app with its own lifespan (engine, Temporal client) as `bulkops api` runs
    it; given an app, one whose lifespan already runs (the harness's), served without a second one.
    `own_thread`: uvicorn in a thread with its own event loop, for callers that block the test's loop
    (synchronous clients); otherwise a task in the test's loop, whose app objects the test may read.
    `port`: this one rather than a free one (a URL registered elsewhere beforehand, e.g. at an OpenID
    provider).
    """
    fresh = isinstance(app, Settings)
    served = create_app(app) if fresh else app
    port = port or free_port()
    config = uvicorn.Config(
        served,
        host="127.0.0.1",
        port=port,
        lifespan="on" if fresh else "off",
        log_level="warning",
        # A browser's or a stream's open connection may not hold the shutdown up for long.
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True) if own_thread else None
    task = None if thread else asyncio.create_task(server.serve())
    if thread:
        thread.start()
    try:
        async with asyncio.timeout(60):
            while not server.started:
                if (thread and not thread.is_alive()) or (task and task.done()):
                    raise RuntimeError("uvicorn did not start")
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}", served
    finally:
        server.should_exit = True
        if thread:
            await asyncio.to_thread(thread.join, 30)
        elif task:
            await asyncio.wait_for(task, 30)
