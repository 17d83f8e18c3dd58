"""What the tests share: the stack, a fresh tenant with an API key, a worker and an API client."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from temporalio import workflow
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Worker

from activities.orders import OrderActivities
from api.app import create_app
from bulkops.devstack.postgres import EmbeddedPostgres, free_port
from bulkops.devstack.temporal import TemporalDevServer
from bulkops.domain.model import TERMINAL_STATUSES, OperationStatus
from bulkops.infra.tracing import Telemetry
from bulkops.service.auth import create_tenant
from bulkops.settings import Settings
from bulkops.store.db import make_engine, make_order_pool, make_sessionmaker
from bulkops.store.migrate import upgrade
from bulkops.store.tables import ITEMS, OPERATIONS, ORDERS, REFUNDS
from bulkops.worker import WORKFLOWS, build_worker, replayer


@contextlib.contextmanager
def embedded_stack(prefix: str, database_url: str | None = None) -> Iterator[Stack]:
    """A throwaway PostgreSQL (unless `database_url` is given) and a file-backed Temporal dev server."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    pg: EmbeddedPostgres | None = None
    if not database_url:
        pg = EmbeddedPostgres(root / "pg", free_port())
        pg.start()
        database_url = pg.url
    temporal = TemporalDevServer(
        root / "temporal" / "temporal.db", free_port(), log_file=root / "temporal.log"
    )
    try:
        upgrade(database_url)
        temporal.start()
        yield Stack(root=root, database_url=database_url, temporal=temporal, postgres=pg)
    finally:
        temporal.stop()
        if pg is not None:
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Stack:
    root: Path
    database_url: str
    temporal: TemporalDevServer
    postgres: EmbeddedPostgres | None


def stack_settings(stack: Stack, queue: str = "test", **overrides: Any) -> Settings:
    """Settings on `stack` with a task queue of its own (`queue`-<random>), a pool of 10 connections
    and a 2 s sticky timeout (a killed worker's workflows move on after 2 s, not 10); `overrides` by
    their environment names (BULKOPS_...)."""
    # Settings ignores unknown names: a misspelt override would quietly test the default.
    names = {f.alias or name for name, f in Settings.model_fields.items()}
    assert set(overrides) <= names, set(overrides) - names
    return Settings(
        BULKOPS_DATABASE_URL=stack.database_url,
        TEMPORAL_ADDRESS=stack.temporal.address,
        BULKOPS_TASK_QUEUE=f"{queue}-{uuid.uuid4().hex[:12]}",
        # The tests' webhook receivers listen on free local ports (their own test sets the default).
        **{
            "BULKOPS_DB_POOL_SIZE": 10,
            "BULKOPS_WORKER_STICKY_TIMEOUT_S": 2,
            "BULKOPS_WEBHOOK_PORTS": "*",
            **overrides,
        },
    )


@dataclass
class Tenant:
    id: str
    api_key: str
    webhook_secret: str
    http: httpx.AsyncClient

    async def post(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.post(path, headers=self._h(kw), **kw)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.get(path, headers=self._h(kw), **kw)

    def _h(self, kw: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", **kw.pop("headers", {})}


@dataclass
class Harness:
    stack: Stack
    client: Client
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker
    http: httpx.AsyncClient
    order_pool: AsyncConnectionPool
    tenants: list[Tenant] = field(default_factory=list)
    app: Any = None
    worker_task: asyncio.Task[None] | None = None
    worker: Worker | None = None
    _worker_cm: Any = None
    telemetry: Telemetry | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, stack: Stack, client: Client, settings: Settings, telemetry: Telemetry | None = None
    ) -> AsyncIterator[Harness]:
        """`telemetry` traces the app and the workers (pass a `client` connected with it too)."""
        engine = make_engine(settings, pool_size=5)
        app = create_app(settings, telemetry or Telemetry())
        configure = telemetry.instrument_connection if telemetry else None
        async with (
            app.router.lifespan_context(app),
            make_order_pool(settings, size=10, configure=configure) as pool,
        ):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bulkops.test") as http:
                h = cls(stack, client, settings, engine, make_sessionmaker(engine), http, pool, app=app)
                h.telemetry = telemetry
                try:
                    yield h
                finally:
                    await h.stop_worker()
                    await engine.dispose()

    def configure(self, **updates: Any) -> Settings:
        """Change settings for this test's API and the workers it starts from now on."""
        self.settings = self.settings.model_copy(update=updates)
        self.app.state.services.settings = self.settings
        self.app.state.services.operations.settings = self.settings
        self.app.state.services.orders.settings = self.settings
        self.app.state.services.people.settings = self.settings
        return self.settings

    # --- worker ----------------------------------------------------------------------------------

    async def start_worker(
        self, order_activities: OrderActivities | None = None, workflows: Sequence[type] = WORKFLOWS
    ) -> None:
        self._worker_cm = build_worker(
            self.settings,
            self.client,
            order_activities=order_activities,
            telemetry=self.telemetry,
            workflows=workflows,
        )
        self.worker = await self._worker_cm.__aenter__()
        self.worker_task = asyncio.create_task(self.worker.run())

    async def stop_worker(self) -> None:
        if self.worker is not None:
            await self.worker.shutdown()
            self.worker = None
        if self._worker_cm is not None:
            await self._worker_cm.__aexit__(None, None, None)
            self._worker_cm = None

    # --- tenants and orders ------------------------------------------------------------------------

    async def tenant(self, prefix: str = "t") -> Tenant:
        tid = f"{prefix}-{uuid.uuid4().hex[:10]}"
        async with self.sessionmaker() as session, session.begin():
            key, secret = await create_tenant(session, tid)
        t = Tenant(tid, key, secret, self.http)
        self.tenants.append(t)
        return t

    async def seed(self, tenant: Tenant, n: int, **over: Any) -> list[uuid.UUID]:
        """Insert n orders straight into Postgres (fast); `over` fixes columns for all of them."""
        now = datetime.now(UTC)
        rows = []
        for i in range(n):
            row: dict[str, Any] = {
                "id": uuid.uuid4(),
                "tenant_id": tenant.id,
                "status": "PAID",
                "currency": "USD",
                "total_cents": 1000 + (i % 50) * 10,
                "refunded_cents": 0,
                "paid_at": now,
                "customer_email": f"c{i}@example.com",
                "tags": [],
                "metadata": {},
                "version": 1,
                "created_at": now + timedelta(microseconds=i),
                "updated_at": now,
            }
            row.update(over)
            rows.append(row)
        async with self.sessionmaker() as session, session.begin():
            for start in range(0, n, 2000):
                await session.execute(insert(ORDERS), rows[start : start + 2000])
        return [r["id"] for r in rows]

    # --- operations ------------------------------------------------------------------------------

    async def start(self, tenant: Tenant, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        r = await tenant.post("/v1/bulk-operations", json=body, **kw)
        assert r.status_code in (200, 202), r.text
        return r.json()  # type: ignore[no-any-return]

    async def wait_end(self, tenant: Tenant, op_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            r = await tenant.get(f"/v1/bulk-operations/{op_id}")
            assert r.status_code == 200, r.text
            body = r.json()
            if OperationStatus(body["status"]) in TERMINAL_STATUSES:
                return body  # type: ignore[no-any-return]
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"operation {op_id} still {body['status']}: {body}")
            await asyncio.sleep(0.2)

    async def wait_for(self, tenant: Tenant, op_id: str, pred: Any, timeout: float = 60) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            body = (await tenant.get(f"/v1/bulk-operations/{op_id}")).json()
            if pred(body):
                return body  # type: ignore[no-any-return]
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"condition not met: {body}")
            await asyncio.sleep(0.05)

    async def pending_activities(self, op_id: str) -> list[PendingActivityInfo]:
        desc = await self.client.get_workflow_handle(f"bulk-op-{op_id}").describe()
        return list(desc.raw_description.pending_activities)

    async def items(self, op_id: str) -> list[Any]:
        async with self.sessionmaker() as session:
            return list(
                (
                    await session.execute(
                        select(ITEMS).where(ITEMS.c.operation_id == uuid.UUID(op_id)).order_by(ITEMS.c.seq)
                    )
                ).all()
            )

    async def summary_row(self, op_id: str) -> Any:
        async with self.sessionmaker() as session:
            return (
                await session.execute(select(OPERATIONS).where(OPERATIONS.c.id == uuid.UUID(op_id)))
            ).one()

    async def orders(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
        async with self.sessionmaker() as session:
            rows = (await session.execute(select(ORDERS).where(ORDERS.c.id.in_(ids)))).all()
        return {r.id: r for r in rows}

    async def refunds(self, op_id: str) -> list[Any]:
        async with self.sessionmaker() as session:
            return list(
                (
                    await session.execute(select(REFUNDS).where(REFUNDS.c.operation_id == uuid.UUID(op_id)))
                ).all()
            )

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.sessionmaker() as session:
            return await session.scalar(text(sql), params)

    async def count(self, table: Any, *where: Any) -> int:
        async with self.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 30) -> None:
    """Return once `check()` (or what it awaits) holds; fail the test after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await _holds(check()):
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _holds(result: bool | Awaitable[bool]) -> bool:
    return await result if inspect.isawaitable(result) else bool(result)


async def assert_replays(history: WorkflowHistory, shift_s: Callable[[], float] | None = None) -> None:
    """The current workflow code replays `history`; with `shift_s`, every `workflow.now()` reading is
    moved by `shift_s()` seconds (a worker can be handed another time for a task than a later replay
    computes: `workflows.clock`), and the decisions must not change."""
    real_now = workflow.now
    if shift_s is not None:
        workflow.now = lambda: real_now() + timedelta(seconds=shift_s())
    try:
        replayed = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    finally:
        workflow.now = real_now
    assert replayed.replay_failure is None, replayed.replay_failure


def shuffled(xs: list[Any]) -> list[Any]:
    ys = list(xs)
    random.shuffle(ys)
    return ys
