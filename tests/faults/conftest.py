"""Fault tests break their own stack, never the session's: each module gets its own PostgreSQL and
Temporal dev server (free ports, a temporary directory), so stopping them disturbs no other test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client

from bulkops.infra.temporal_client import connect
from bulkops.settings import Settings
from tests.harness import Harness, Stack, embedded_stack, stack_settings


@pytest.fixture(scope="module")
def fault_stack() -> Iterator[Stack]:
    with embedded_stack("bulkops-faults-") as stack:
        yield stack


@pytest.fixture(scope="module")
async def fault_client(fault_stack: Stack) -> Client:
    return await connect(Settings(TEMPORAL_ADDRESS=fault_stack.temporal.address))


@pytest.fixture
async def fault_harness(fault_stack: Stack, fault_client: Client) -> AsyncIterator[Harness]:
    settings = stack_settings(
        fault_stack,
        "faults",
        BULKOPS_DB_POOL_SIZE=20,
        # Enough attempts (0.5 s doubling to 10 s) to outlast a restart of a few seconds: the
        # drill expects every order's real outcome, not RETRIES_EXHAUSTED.
        BULKOPS_ACTIVITY_MAX_ATTEMPTS=12,
        BULKOPS_ACTIVITY_TIMEOUT_S=5.0,
    )
    async with Harness.open(fault_stack, fault_client, settings) as h:
        yield h
