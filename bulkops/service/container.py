"""Everything the API (and the console) needs from the product, opened once per process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio.client import Client

from bulkops.infra.metrics import refresh_running
from bulkops.infra.temporal_client import connect
from bulkops.infra.tracing import Telemetry
from bulkops.service.auth import KeyCache, Principal
from bulkops.service.controls import ControlService
from bulkops.service.operations import OperationService
from bulkops.service.orders import OrderService
from bulkops.service.people import PeopleService
from bulkops.service.sessions import SessionService
from bulkops.settings import Settings
from bulkops.store.db import make_engine, make_sessionmaker


@dataclass
class Services:
    settings: Settings
    sessionmaker: async_sessionmaker
    client: Client
    operations: OperationService
    orders: OrderService
    controls: ControlService
    keys: KeyCache
    sessions: SessionService
    people: PeopleService

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: Settings, telemetry: Telemetry | None = None) -> AsyncIterator[Services]:
        telemetry = telemetry or Telemetry()
        engine = make_engine(settings)
        telemetry.instrument_engine(engine)
        try:
            sessionmaker = make_sessionmaker(engine)
            client = await connect(settings, telemetry)
            operations = OperationService(sessionmaker, client, settings)
            keys = KeyCache(sessionmaker, settings.auth_cache_s)
            console_sessions = SessionService(sessionmaker, settings)
            yield cls(
                settings=settings,
                sessionmaker=sessionmaker,
                client=client,
                operations=operations,
                orders=OrderService(sessionmaker, settings),
                controls=ControlService(operations),
                keys=keys,
                sessions=console_sessions,
                people=PeopleService(sessionmaker, keys, console_sessions, settings),
            )
        finally:
            await engine.dispose()

    async def authenticate(self, key: str) -> Principal | None:
        """The key's principal: from the key cache (BULKOPS_AUTH_CACHE_S), else from the database."""
        return await self.keys.principal(key)

    async def readiness(self) -> dict[str, str]:
        """Each dependency's state: "ok" or why not."""
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(3), self.sessionmaker() as session:
                await session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            async with asyncio.timeout(3):
                await self.client.service_client.check_health()
            checks["temporal"] = "ok"
        except Exception as exc:
            checks["temporal"] = f"unreachable: {type(exc).__name__}"
        return checks

    async def refresh_metrics(self) -> None:
        await refresh_running(self.sessionmaker)
