"""Where the completion webhook may POST: public addresses only, unless the operator allows more.

Without this, anyone holding an API key could make the worker call loopback services, the cloud
metadata endpoint (169.254.169.254) or hosts on the private network: server-side request forgery.
The API checks `notify_url` when an operation is created (a 422, nothing started), and the webhook
activity checks again right before each delivery, because a name can resolve elsewhere by then.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx

RESOLVE_TIMEOUT_S = 5.0
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """The URL's host is, or resolves to, an address webhooks may not reach."""


def _public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _addresses(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise UnsafeUrl(f"the host {host!r} does not resolve") from exc
    # Drop an IPv6 scope id ("fe80::1%eth0") before parsing.
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """Raise `UnsafeUrl` unless every address of the URL's host is public (or private ones are allowed)."""
    if allow_private:
        return
    parsed = httpx.URL(url)
    host = parsed.host
    if not host:
        raise UnsafeUrl("the URL has no host")
    for ip in await _addresses(host, parsed.port or (443 if parsed.scheme == "https" else 80)):
        if not _public(ip):
            raise UnsafeUrl(
                f"{host} is {ip}, not a public address (BULKOPS_WEBHOOK_ALLOW_PRIVATE=true allows it)"
            )
