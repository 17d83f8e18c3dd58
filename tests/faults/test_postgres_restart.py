"""PostgreSQL stops and comes back in the middle of a 1,000-order refund: nothing is lost or done twice."""

from __future__ import annotations

import asyncio

import pytest

from tests.faults import drill
from tests.harness import Harness

pytestmark = pytest.mark.faults


async def test_refund_survives_postgres_restart(fault_harness: Harness) -> None:
    h = fault_harness
    assert h.stack.postgres is not None
    await h.start_worker()
    d = await drill.prepare(h)
    await drill.start(d)
    before = await d.wait_processed(150)
    assert before["processed_count"] < len(d.selection), "the fault must land mid-run"
    await asyncio.to_thread(h.stack.postgres.stop)  # fast shutdown: open transactions abort
    assert not h.stack.postgres.running()
    # The workflow keeps its counters while the database is gone; activities fail and are retried.
    await asyncio.sleep(3)
    during = await d.progress()
    assert during["processed_count"] < len(d.selection)
    await asyncio.to_thread(h.stack.postgres.start)
    await drill.verify(d)
    # Orders in flight at the stop failed and were retried: the fault really hit running work.
    assert await drill.max_order_attempt(d) > 1
