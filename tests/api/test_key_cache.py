"""The API's key cache: a checked key is trusted for BULKOPS_AUTH_CACHE_S seconds, never longer.

A key revoked through this API process stops working at once; one revoked elsewhere (the CLI, another
API process: here, straight in the database) stops working within the bound.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from temporalio.client import Client

from bulkops.service.auth import revoke_key
from tests.harness import Harness, Stack

BOUND_S = 2.0


async def test_a_revoked_key_stops_working_within_the_bound(
    stack: Stack, client: Client, harness: Harness
) -> None:
    settings = harness.settings.model_copy(update={"auth_cache_s": BOUND_S})
    async with Harness.open(stack, client, settings) as h:
        a = await h.tenant("keys")
        checked_at = time.monotonic()
        assert (await a.get("/v1/orders")).status_code == 200  # checked in the database, now trusted
        async with h.sessionmaker() as session, session.begin():  # revoked behind this process's back
            assert await revoke_key(session, a.id, a.api_key) == 1
        revoked_at = time.monotonic()
        first = (await a.get("/v1/orders")).status_code
        if time.monotonic() - checked_at < BOUND_S - 0.2:
            assert first == 200  # served from the cache: no database round trip
        while True:
            # Judged by when the request was sent, not answered (an answer may be slow here): the
            # entry's bound counts from before its lookup, which began before the revoke.
            sent = time.monotonic()
            if (await a.get("/v1/orders")).status_code != 200:
                break
            assert sent - revoked_at < BOUND_S
            await asyncio.sleep(0.05)
        assert (await a.get("/v1/orders")).status_code == 401

        # Revoked through this API process: the very next request fails.
        b = await h.tenant("keys")
        created = await b.post("/v1/tenant/keys", json={"role": "viewer", "name": "spare"})
        assert created.status_code == 201, created.text
        spare = {"Authorization": f"Bearer {created.json()['api_key']}"}
        assert (await h.http.get("/v1/orders", headers=spare)).status_code == 200
        assert (
            await b.http.delete(f"/v1/tenant/keys/{created.json()['id']}", headers=b._h({}))
        ).status_code == 204
        assert (await h.http.get("/v1/orders", headers=spare)).status_code == 401
        # A wrong key is never cached: it fails, and keeps failing.
        wrong = {"Authorization": f"Bearer bko_{uuid.uuid4().hex}"}
        assert [(await h.http.get("/v1/orders", headers=wrong)).status_code for _ in range(3)] == [401] * 3
