"""Where a webhook connects: the vetted address of one lookup, never a second answer; what it reads
of an answer: a few kilobytes, however much the receiver sends."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.contracts import WebhookInput
from activities.webhooks import WebhookActivities
from bulkops.infra.netpolicy import Resolver, UnsafeUrl, check_webhook_url, vetted_addresses
from bulkops.infra.webhook_http import MAX_RESPONSE_BYTES, webhook_client
from tests.harness import Harness
from tests.webhooks.receivers import dns_stub, ended_operation, receiver

PUBLIC = "1.1.1.1"  # public, and nothing of ours listens there: an attempt to it just fails


async def deliver(h: Harness, op_id: object, tenant_id: str) -> int:
    async with webhook_client(h.settings) as http:
        acts = WebhookActivities(h.sessionmaker, h.settings, http)
        inp = WebhookInput(operation_id=op_id, tenant_id=tenant_id, notify_url="(from the row)")
        return await ActivityEnvironment().run(acts.deliver_webhook, inp)  # type: ignore[no-any-return]


async def test_a_rebinding_name_never_gets_a_delivery_to_loopback(harness: Harness) -> None:
    """The stub answers a public address to the first lookup and 127.0.0.1 to every later one."""
    h = harness
    a = await h.tenant()
    async with receiver("ok") as rx, dns_stub(PUBLIC, "127.0.0.1") as (stub, port):
        h.configure(webhook_dns_server="127.0.0.1", webhook_dns_port=port, webhook_timeout_s=1.5)
        op_id = await ended_operation(h, a, rx.url.replace("127.0.0.1", "rebind.bulkops.test"))
        # First attempt: one lookup, vetted, and the connection goes to that public address (and
        # fails here). A client that looked the name up again to connect would have reached rx.
        with pytest.raises(Exception) as first:
            await deliver(h, op_id, a.id)
        assert not isinstance(first.value, ApplicationError) or not first.value.non_retryable
        assert stub.a_queries == 1
        # The retry's lookup gets 127.0.0.1: refused for good before any connection.
        with pytest.raises(ApplicationError) as second:
            await deliver(h, op_id, a.id)
        assert second.value.type == "UnsafeUrl" and second.value.non_retryable
        assert stub.a_queries == 2
    assert rx.connections == 0 and rx.hits == []


async def test_the_connection_goes_to_the_looked_up_address_with_the_names_host_header(
    harness: Harness,
) -> None:
    h = harness
    a = await h.tenant()
    async with receiver("ok") as rx, dns_stub("127.0.0.1") as (stub, port):
        # Loopback allowed here so that the vetted address can be the receiver's.
        h.configure(webhook_dns_server="127.0.0.1", webhook_dns_port=port, webhook_allow_private=True)
        url = rx.url.replace("127.0.0.1", "hooks.bulkops.test")
        op_id = await ended_operation(h, a, url)
        assert await deliver(h, op_id, a.id) == 204
    assert stub.a_queries == 1  # the system resolver knows no `.test` name: only the stub was asked
    [hit] = rx.hits
    assert hit.headers["host"] == httpx.URL(url).netloc.decode()


async def test_a_name_that_does_not_resolve_now_is_retried_not_dropped(harness: Harness) -> None:
    h = harness
    a = await h.tenant()
    async with receiver("ok") as rx, dns_stub("NXDOMAIN", "127.0.0.1") as (stub, port):
        assert stub.a_queries == 0
        h.configure(webhook_dns_server="127.0.0.1", webhook_dns_port=port, webhook_allow_private=True)
        op_id = await ended_operation(h, a, rx.url.replace("127.0.0.1", "flaky.bulkops.test"))
        with pytest.raises(RuntimeError, match="does not resolve"):  # retryable, unlike UnsafeUrl
            await deliver(h, op_id, a.id)
        assert await deliver(h, op_id, a.id) == 204
    assert len(rx.hits) == 1


EMBEDDED = [
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:8.8.8.8",  # IPv4-mapped, even of a public address
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::808:808",  # NAT64, even of a public address
    "64:ff9b:1::a00:1",  # local-use NAT64
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:808:808::1",  # 6to4, even of a public address
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "ff02::1",  # multicast
    "224.0.0.251",  # multicast
    "fe80::1",  # link-local
    "fd00::1",  # unique local
    "169.254.169.254",  # cloud metadata
    "0.0.0.0",
]


@pytest.mark.parametrize("address", EMBEDDED)
async def test_embedded_and_non_public_forms_are_refused(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(UnsafeUrl):
        await check_webhook_url(f"https://{host}/hook", allow_private=False, ports=None)
    with pytest.raises(UnsafeUrl):  # and by the transport itself, whatever the API let through
        await vetted_addresses(Resolver(), address, 443, allow_private=False)


async def test_public_addresses_pass() -> None:
    for address in ("93.184.216.34", "2606:4700:4700::1111"):
        assert await vetted_addresses(Resolver(), address, 443, allow_private=False) == [
            ipaddress.ip_address(address)
        ]


async def test_an_endless_body_does_not_grow_the_worker(harness: Harness) -> None:
    """Stated bound: the worker keeps at most MAX_RESPONSE_BYTES (4 kB) of an answer and reads at
    most one socket read (64 kB) past it; the process grows by less than 32 MB while the receiver
    would send forever."""
    h = harness
    a = await h.tenant()
    me = psutil.Process()
    peak = before = me.memory_info().rss

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, me.memory_info().rss)
            await asyncio.sleep(0.005)

    async with receiver("endless") as rx:
        # A timeout far above the answer's head: a delivery that read on would take all of it.
        h.configure(webhook_allow_private=True, webhook_timeout_s=30)
        op_id = await ended_operation(h, a, rx.url)
        sampler = asyncio.create_task(sample())
        try:
            started = asyncio.get_running_loop().time()
            assert await deliver(h, op_id, a.id) == 200
            elapsed = asyncio.get_running_loop().time() - started
            await asyncio.sleep(0.2)  # the receiver notices the closed connection
        finally:
            sampler.cancel()
    print(
        f"endless body: receiver sent {rx.body_bytes_sent / 2**20:.1f} MiB before the hang-up, "
        f"worker grew {(peak - before) / 2**20:.1f} MiB, delivery took {elapsed:.2f}s"
    )
    assert MAX_RESPONSE_BYTES <= 4096
    assert elapsed < 10, "the answer's head was read, then the connection closed"
    # Only what fits the sockets' buffers left the receiver before the worker hung up.
    assert rx.body_bytes_sent < 16 * 2**20, rx.body_bytes_sent
    assert peak - before < 32 * 2**20, (peak - before) / 2**20


TLS_NAME = "hooks.bulkops.test"


@pytest.fixture
def tls_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for TLS_NAME (and nothing else)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={TLS_NAME}",
            "-addext",
            f"subjectAltName=DNS:{TLS_NAME}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_names_the_receiver_not_the_address(harness: Harness, tls_cert: tuple[Path, Path]) -> None:
    """Over https the vetted address is dialled, and the TLS server name (SNI) and the certificate
    check are the URL's name: a certificate for the name verifies although the socket is 127.0.0.1."""
    h = harness
    a = await h.tenant()
    name = TLS_NAME
    cert, key = tls_cert
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_ctx.sni_callback = lambda _sock, server_name, _ctx: names.append(server_name)  # type: ignore[assignment,misc,return-value]
    client_ctx = ssl.create_default_context(cafile=str(cert))
    hits: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        async with dns_stub("127.0.0.1") as (stub, dns_port):
            h.configure(webhook_dns_server="127.0.0.1", webhook_dns_port=dns_port, webhook_allow_private=True)
            op_id = await ended_operation(h, a, f"https://{name}:{port}/hook")
            async with webhook_client(h.settings, ssl_context=client_ctx) as http:
                acts = WebhookActivities(h.sessionmaker, h.settings, http)
                inp = WebhookInput(operation_id=op_id, tenant_id=a.id, notify_url="(from the row)")
                assert await ActivityEnvironment().run(acts.deliver_webhook, inp) == 204
    finally:
        server.close()
    assert names == [name] and stub.a_queries == 1
    assert f"host: {name}:{port}".encode() in hits[0].lower()
