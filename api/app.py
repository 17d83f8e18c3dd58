"""The FastAPI app: Temporal client and database engine are created in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from api import problems
from api.routers import events, exports, health, metrics, operations, orders
from bulkops.db import make_engine, make_sessionmaker
from bulkops.operations import OperationService
from bulkops.settings import Settings
from bulkops.temporal_client import connect


class BodyLimit(BaseHTTPMiddleware):
    def __init__(self, app: object, max_bytes: int) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.max_bytes = max_bytes

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return problems.problem_response(413, f"the request body exceeds {self.max_bytes} bytes")
        return await call_next(request)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        app.state.settings = settings
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.client = await connect(settings)
        app.state.operations = OperationService(app.state.sessionmaker, app.state.client, settings)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="bulkops",
        version="0.1.0",
        description="Durable bulk operations (cancel, refund, update, export) over orders.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    problems.install(app)
    app.include_router(health.router)
    app.include_router(operations.router)
    app.include_router(orders.router)
    app.include_router(events.router)
    app.include_router(exports.router)
    app.include_router(metrics.router)
    return app
