"""Session-scoped real Temporal dev server and PostgreSQL; a fresh tenant and task queue per test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from bulkops.devstack.postgres import EmbeddedPostgres, free_port
from bulkops.devstack.temporal import TemporalDevServer
from bulkops.migrate import upgrade
from bulkops.settings import Settings
from bulkops.temporal_client import connect
from tests.harness import Harness, Stack


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow measurement: pass --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="bulkops-test-"))
    pg: EmbeddedPostgres | None = None
    url = os.environ.get("BULKOPS_TEST_DATABASE_URL")
    if not url:
        pg = EmbeddedPostgres(root / "pg", free_port())
        pg.start()
        url = pg.url
    upgrade(url)
    temporal = TemporalDevServer(
        root / "temporal" / "temporal.db", free_port(), log_file=root / "temporal.log"
    )
    temporal.start()
    try:
        yield Stack(root=root, database_url=url, temporal=temporal, postgres=pg)
    finally:
        temporal.stop()
        if pg is not None:
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
async def client(stack: Stack) -> Client:
    return await connect(Settings(TEMPORAL_ADDRESS=stack.temporal.address))


@pytest.fixture
async def harness(stack: Stack, client: Client) -> AsyncIterator[Harness]:
    settings = Settings(
        BULKOPS_DATABASE_URL=stack.database_url,
        TEMPORAL_ADDRESS=stack.temporal.address,
        BULKOPS_TASK_QUEUE=f"test-{uuid.uuid4().hex[:12]}",
        BULKOPS_DB_POOL_SIZE=10,
        BULKOPS_ACTIVITY_MAX_ATTEMPTS=3,
    )
    async with Harness.open(stack, client, settings) as h:
        yield h
