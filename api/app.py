"""The FastAPI app: Temporal client and database engine are created in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems
from api.console.mount import install as install_console
from api.routers import controls, events, exports, health, metrics, operations, orders, tenant
from bulkops.infra.tracing import Telemetry
from bulkops.service.container import Services
from bulkops.settings import Settings


class BodyLimit:
    """413 for a body over the limit, whether it declares its length or arrives chunked without one.

    Pure ASGI (not BaseHTTPMiddleware) so that it can count the bytes the app actually reads and so
    that streamed responses (SSE, exports) pass through untouched.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"the request body exceeds {self.max_bytes} bytes"
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await problems.problem_response(413, detail)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                # FastAPI re-raises an HTTPException met while reading the body; the problem+json
                # handler then answers it.
                raise HTTPException(413, detail)
            return message

        await self.app(scope, limited, send)


def _operation_id(route: APIRoute) -> str:
    # Untagged routes (the console's pages) are not in the published document.
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None) -> FastAPI:
    """`telemetry`: this process's tracing (default: from the OTLP environment, off without one)."""
    settings = settings or Settings()
    owned = telemetry is None
    telemetry = telemetry or Telemetry.from_environment("bulkops-api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Services.open(settings, telemetry) as services:
            app.state.services = services
            yield
        if owned:
            telemetry.shutdown()

    app = FastAPI(
        title="bulkops",
        version="0.1.0",
        description="Durable bulk operations (cancel, refund, update, export) over orders.",
        lifespan=lifespan,
        # Short operation ids (`operations-get`, `orders-create`): what generated clients name their
        # functions after.
        generate_unique_id_function=_operation_id,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    problems.install(app)
    app.include_router(health.router)
    app.include_router(operations.router)
    app.include_router(controls.router)
    app.include_router(tenant.router)
    app.include_router(orders.router)
    app.include_router(events.router)
    app.include_router(exports.router)
    app.include_router(metrics.router)
    install_console(app, settings)
    telemetry.instrument_app(app)
    return app
