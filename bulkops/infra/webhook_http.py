"""The webhook's HTTP client: connects only to vetted addresses and reads only a little of any answer.

The URL is left as it is (so the Host header and the TLS server name and certificate check are the
receiver's name); only the network backend differs: `connect_tcp` resolves the name once, vets every
address (`bulkops.infra.netpolicy`) and connects to one of those addresses. No second lookup happens
anywhere, so a rebinding name cannot switch the connection to loopback or the private network.
Proxies from the environment are ignored (a proxy would resolve the name again), redirects are not
followed, and a receiver cannot make the worker hold more than `MAX_RESPONSE_BYTES` of its answer
or keep an attempt longer than the webhook timeout.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

import httpcore
import httpx

from bulkops.infra.netpolicy import Resolver, UnsafeUrl, check_port, vetted_addresses
from bulkops.settings import Settings

# What is read of a receiver's answer (the status line and headers are bounded by h11 at 100 kB).
MAX_RESPONSE_BYTES = 4096


class VettedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, resolver: Resolver, *, allow_private: bool, ports: frozenset[int] | None) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.resolver = resolver
        self.allow_private = allow_private
        self.ports = ports

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        check_port(port, self.ports)
        addresses = await vetted_addresses(self.resolver, host, port, allow_private=self.allow_private)
        failure: Exception | None = None
        for ip in addresses:
            try:
                return await self.inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # vetted_addresses never returns an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeUrl("webhooks do not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class VettedTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self,
        resolver: Resolver,
        *,
        allow_private: bool,
        max_connections: int,
        ports: frozenset[int] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__()
        # httpx takes no network backend of its own, so the pool it built is replaced by one that has.
        # TLS verifies the certificate against the URL's name (httpcore's server_hostname), not the
        # address connected to.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=max_connections,
            network_backend=VettedBackend(resolver, allow_private=allow_private, ports=ports),
        )


def webhook_client(settings: Settings, ssl_context: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    resolver = Resolver(settings.webhook_dns_server, settings.webhook_dns_port)
    transport = VettedTransport(
        resolver,
        allow_private=settings.webhook_allow_private,
        max_connections=settings.webhook_max_concurrent,
        ports=settings.webhook_port_set,
        ssl_context=ssl_context,
    )
    return httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False)


@dataclass(frozen=True)
class Answer:
    status: int
    head: bytes  # at most MAX_RESPONSE_BYTES of the body, for the log


async def post_bounded(
    http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout_s: float
) -> Answer:
    """POST `body`; the whole attempt (connect, send, answer) ends within `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        async with http.stream("POST", url, content=body, headers=headers, timeout=timeout_s) as response:
            head = b""
            async for chunk in response.aiter_raw():
                head += chunk[: MAX_RESPONSE_BYTES - len(head)]
                if len(head) >= MAX_RESPONSE_BYTES:
                    break  # leaving the block closes the connection; the rest is never read
            return Answer(response.status_code, head)
