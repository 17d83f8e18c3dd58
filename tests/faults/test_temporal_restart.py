"""The Temporal server (file-backed dev server: same database file, same port) stops and comes back in
the middle of a 1,000-order refund; the in-process worker and the API reconnect by themselves."""

from __future__ import annotations

import asyncio

import pytest

from bulkops.devstack.postgres import port_open
from tests.faults import drill
from tests.harness import Harness

pytestmark = pytest.mark.faults


async def test_refund_survives_temporal_restart(fault_harness: Harness) -> None:
    h = fault_harness
    await h.start_worker()
    d = await drill.prepare(h)
    await drill.start(d)
    before = await d.wait_processed(150)
    assert before["processed_count"] < len(d.selection), "the fault must land mid-run"
    await asyncio.to_thread(h.stack.temporal.stop)
    assert not port_open(h.stack.temporal.port)
    await asyncio.sleep(3)
    await asyncio.to_thread(h.stack.temporal.start)
    final = await drill.verify(d)
    assert final["processed_count"] > before["processed_count"]
