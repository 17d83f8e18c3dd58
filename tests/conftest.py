"""Session-scoped real Temporal dev server and PostgreSQL; a fresh tenant and task queue per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client

from bulkops.infra.temporal_client import connect
from bulkops.settings import Settings
from tests.harness import Harness, Stack, embedded_stack, stack_settings


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
    with embedded_stack("bulkops-test-", os.environ.get("BULKOPS_TEST_DATABASE_URL")) as stack:
        yield stack


@pytest.fixture(scope="session")
async def client(stack: Stack) -> Client:
    return await connect(Settings(TEMPORAL_ADDRESS=stack.temporal.address))


@pytest.fixture
async def harness(stack: Stack, client: Client) -> AsyncIterator[Harness]:
    settings = stack_settings(
        stack,
        BULKOPS_ACTIVITY_MAX_ATTEMPTS=3,
        # Tests revoke keys behind the API's back and expect the next request to fail at once; the
        # key cache and its bound have their own test (tests/api/test_key_cache.py).
        BULKOPS_AUTH_CACHE_S=0,
        # Likewise a stopped worker's operation reads as `checkpoint` at once, not after the window in
        # which readers share a live answer (tests/api/test_shared_reads.py).
        BULKOPS_PROGRESS_FRESH_S=0,
    )
    async with Harness.open(stack, client, settings) as h:
        yield h
