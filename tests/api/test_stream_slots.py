"""A tenant's open event streams are counted in PostgreSQL: the cap holds across API processes, a
slot comes back however its stream ends (the client gone, a HEAD that never streamed), and the
lease of a process that died without giving its slots back expires."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from temporalio.client import Client

from bulkops.store import streams
from bulkops.store.tables import STREAMS
from tests.harness import Harness, Stack, Tenant
from tests.serving import serve
from tests.support import SlowOrders


@contextlib.asynccontextmanager
async def _open_stream(base: str, tenant: Tenant, op_id: str) -> AsyncIterator[int]:
    """Holds one event stream open for the block; yields its status."""
    headers = {"Authorization": f"Bearer {tenant.api_key}", "Accept": "text/event-stream"}
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as http,
        http.stream("GET", f"/v1/bulk-operations/{op_id}/events", headers=headers) as r,
    ):
        lines = r.aiter_lines()  # held: an abandoned iterator, once collected, closes the stream
        if r.status_code == 200:
            await anext(lines)  # the stream has started and sent something
        yield r.status_code


async def _status(base: str, tenant: Tenant, op_id: str) -> int:
    async with _open_stream(base, tenant, op_id) as status:
        return status


async def test_stream_slots_hold_across_processes_and_always_come_back(
    stack: Stack, client: Client, harness: Harness
) -> None:
    settings = harness.settings.model_copy(update={"max_streams_per_tenant": 2, "stream_max_s": 60})
    async with Harness.open(stack, client, settings) as h:
        await h.start_worker(SlowOrders(h.order_pool, delay=0.5))
        a = await h.tenant("slots")
        ids = await h.seed(a, 60)
        op = await h.start(
            a, {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids], "max_concurrency": 1}
        )

        async def held() -> int:
            return await h.count(STREAMS, STREAMS.c.tenant_id == a.id)

        async def settles_at(n: int) -> None:
            async with asyncio.timeout(10):
                while await held() != n:  # noqa: ASYNC110 - the database is polled
                    await asyncio.sleep(0.1)

        async with serve(settings) as (one, _), serve(settings) as (two, _):
            # One stream on each process fills the tenant's two slots: a third is refused by either.
            async with _open_stream(one, a, op["id"]) as first, _open_stream(two, a, op["id"]) as second:
                assert (first, second) == (200, 200)
                assert await held() == 2
                assert await _status(one, a, op["id"]) == 429
                assert await _status(two, a, op["id"]) == 429
            await settles_at(0)  # both given back when their clients left

            # HEAD answers without ever starting the stream's body: no slot may stay taken by it.
            async with httpx.AsyncClient(base_url=two) as http:
                for _ in range(3):
                    head = await http.head(
                        f"/v1/bulk-operations/{op['id']}/events",
                        headers={"Authorization": f"Bearer {a.api_key}"},
                    )
                    assert head.status_code in (200, 405), head.status_code
            await settles_at(0)

            # A client that hangs up before the first event gives its slot back too.
            for _ in range(3):
                async with httpx.AsyncClient(base_url=one, timeout=30) as http:
                    headers = {"Authorization": f"Bearer {a.api_key}"}
                    async with http.stream(
                        "GET", f"/v1/bulk-operations/{op['id']}/events", headers=headers
                    ) as r:
                        assert r.status_code == 200
            await settles_at(0)

            # Slots of a process that died mid-stream hold only until their leases run out.
            async with h.sessionmaker() as session, session.begin():
                for _ in range(2):
                    lifetime_s = 2 - streams.LEASE_MARGIN.total_seconds()  # leases end in 2 s
                    assert await streams.take_slot(session, a.id, 2, lifetime_s)
            assert await _status(one, a, op["id"]) == 429
            await asyncio.sleep(2.2)
            async with _open_stream(one, a, op["id"]) as status:
                assert status == 200
                assert await held() == 1  # the expired two were cleared, this one counts
            await settles_at(0)

        assert (await a.post(f"/v1/bulk-operations/{op['id']}/cancel")).status_code == 200
        assert (await h.wait_end(a, op["id"]))["status"] == "CANCELLED"
