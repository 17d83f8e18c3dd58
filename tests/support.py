"""Fault-injecting per-order activities for tests: same name, same transaction, plus a delay or a fault."""

from __future__ import annotations

import asyncio
import uuid

from psycopg_pool import AsyncConnectionPool
from temporalio import activity

from activities.contracts import OrderOutcome, ProcessOrderInput
from activities.orders import OrderActivities


class SlowOrders(OrderActivities):
    """Each order takes `delay` seconds, so a test can act while the operation runs."""

    def __init__(self, pool: AsyncConnectionPool, delay: float) -> None:
        super().__init__(pool)
        self.delay = delay

    @activity.defn(name="process_order")
    async def process_order(self, inp: ProcessOrderInput) -> OrderOutcome:
        await asyncio.sleep(self.delay)
        return await super().process_order(inp)


class FlakyOrders(OrderActivities):
    """Orders in `always_fail` never succeed (a transient fault that outlasts the retry policy);
    orders in `fail_once` fail on their first attempt only."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        always_fail: set[uuid.UUID],
        fail_once: set[uuid.UUID] | None = None,
        delay: float = 0.0,
    ) -> None:
        super().__init__(pool)
        self.always_fail = always_fail
        self.fail_once = fail_once or set()
        self.delay = delay
        self.attempts: dict[uuid.UUID, int] = {}

    @activity.defn(name="process_order")
    async def process_order(self, inp: ProcessOrderInput) -> OrderOutcome:
        self.attempts[inp.order_id] = self.attempts.get(inp.order_id, 0) + 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if inp.order_id in self.always_fail:
            raise ConnectionError("payment gateway unreachable")
        if inp.order_id in self.fail_once and activity.info().attempt == 1:
            raise ConnectionError("connection reset")
        return await super().process_order(inp)
