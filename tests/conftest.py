"""Session-scoped real Temporal dev server and PostgreSQL; a fresh tenant and task queue per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client

from bulkops.infra.temporal_client import connect
from bulkops.settings import Settings
from tests.harness import Harness, Stack, embedded_stack, stack_settings


def pytest_configure(config: pytest.Config) -> None:
    # xdist starts its workers with COLUMNS=80 and LINES=24, a width the CLI's consoles would keep
    # from their import on; without them the CLI's tests give the width they want (tests/test_cli.py).
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.pop("COLUMNS", None)
        os.environ.pop("LINES", None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


# The tests run on two processes (pytest-xdist, `-n 2` in pyproject.toml), each with its own Temporal
# dev server and PostgreSQL. These either load the machine (the soak's six processes, the dev stack,
# 10,000 orders) or judge time (a pace within 10 %, a fair share, a receiver that never answers):
# they run one at a time, in one process, never beside each other.
ONE_AT_A_TIME = (
    "tests/chaos/test_soak.py",
    "tests/cli/test_dev.py",
    "tests/api/test_export.py",
    "tests/api/test_progress_truth.py",
    "tests/safety/test_pacing.py",
    "tests/webhooks/test_isolation.py",
    "tests/workflows/test_fair_share.py",
    "tests/workflows/test_fairness.py",
)


# The OpenID provider's tests share one process: its session fixture may run `npm ci` first.
OIDC_PROVIDER = "tests/console/oidc/"


def pytest_itemcollected(item: pytest.Item) -> None:
    # As each test is collected: xdist names its group from its markers when collection is done.
    path = item.nodeid.split("::")[0]
    if path in ONE_AT_A_TIME:
        item.add_marker(pytest.mark.xdist_group("one_at_a_time"))
    elif path.startswith(OIDC_PROVIDER):
        item.add_marker(pytest.mark.xdist_group("oidc_provider"))


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
