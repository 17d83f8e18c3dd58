"""Completion webhook: a receiver that refuses three times still gets exactly one signed delivery."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tests.harness import Harness


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    """A minimal HTTP/1.1 endpoint on a real socket: 500 for the first `refuse` POSTs, then 204."""

    refuse: int
    deliveries: list[Delivery] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            pairs = (line.partition(":") for line in head[1:] if line)
            headers = {k.strip().lower(): v.strip() for k, _, v in pairs}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status = 500 if len(self.deliveries) < self.refuse else 204
            self.deliveries.append(Delivery(headers, body, status))
            reason = "Internal Server Error" if status == 500 else "No Content"
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def receiver(refuse: int) -> AsyncIterator[tuple[Receiver, str]]:
    r = Receiver(refuse)
    server = await asyncio.start_server(r.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield r, f"http://127.0.0.1:{port}/hooks/bulkops"
    finally:
        server.close()
        await server.wait_closed()


async def test_webhook_retried_until_accepted_exactly_once(harness: Harness) -> None:
    h = harness
    h.configure(webhook_allow_private=True)  # the receiver is on loopback
    await h.start_worker()
    a = await h.tenant("acme")
    paid = await h.seed(a, 4)
    shipped = await h.seed(a, 1, status="SHIPPED")
    async with receiver(refuse=3) as (rx, url):
        op = await h.start(
            a,
            {
                "operation_type": "BULK_CANCEL",
                "order_ids": [str(i) for i in paid + shipped],
                "parameters": {"reason": "hook"},
                "notify_url": url,
            },
        )
        assert op["notify_url"] == url
        # The workflow returns only after the webhook activity succeeded: then no attempt can follow.
        handle = h.client.get_workflow_handle(op["workflow_id"])
        await asyncio.wait_for(handle.result(), 120)

    assert [d.answered for d in rx.deliveries] == [500, 500, 500, 204]
    accepted = [d for d in rx.deliveries if d.answered < 300]
    assert len(accepted) == 1
    hook = accepted[0]
    # t=<unix>,v1=<hex hmac of "t.body">, made afresh on each attempt.
    signature = dict(part.split("=", 1) for part in hook.headers["x-bulkops-signature"].split(","))
    assert abs(int(signature["t"]) - time.time()) < 120
    signed = signature["t"].encode() + b"." + hook.body
    expected = hmac.new(a.webhook_secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature["v1"], expected)
    assert hook.headers["content-type"] == "application/json"
    # Every attempt carries the same delivery id, for a receiver to de-duplicate on.
    assert {d.headers["x-bulkops-delivery"] for d in rx.deliveries} == {op["id"]}

    payload = json.loads(hook.body)
    row = await h.summary_row(op["id"])
    assert payload["id"] == op["id"] and payload["tenant_id"] == a.id
    assert payload["status"] == row.status == "PARTIAL_SUCCESS"
    counts = ("total_count", "processed_count", "success_count", "failed_count")
    assert (
        tuple(payload[k] for k in counts)
        == (row.total_count, row.processed_count, row.success_count, row.failed_count)
        == (5, 5, 4, 1)
    )
    assert payload["errors"][0]["code"] == "ORDER_NOT_CANCELLABLE"
    assert payload["completed_at"] is not None
    # Absolute links: the receiver has no request to resolve relative ones against.
    assert payload["links"]["self"] == f"{h.settings.api_base_url()}/v1/bulk-operations/{op['id']}"
