"""Where the completion webhook may POST: public addresses only, unless the operator allows more.

Without this, anyone holding an API key could make the worker call loopback services, the cloud
metadata endpoint (169.254.169.254) or hosts on the private network: server-side request forgery.
A name is resolved once and every address it gives is vetted; the webhook transport then connects to
one of exactly those addresses (`bulkops.infra.webhook_http`), so a name that answers a public address to
the check and a private one a moment later (DNS rebinding) never reaches the private one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import httpx

RESOLVE_TIMEOUT_S = 5.0
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 forms that carry (or translate to) an IPv4 address, and so can reach any IPv4 host, private
# ones included, through a gateway or the host's own stack: refused whatever the embedded address.
EMBEDDING_V6 = {
    ipaddress.IPv6Network("::ffff:0:0/96"): "an IPv4-mapped address",
    ipaddress.IPv6Network("::/96"): "an IPv4-compatible address",
    ipaddress.IPv6Network("64:ff9b::/96"): "a NAT64 address",
    ipaddress.IPv6Network("64:ff9b:1::/48"): "a local-use NAT64 address",
    ipaddress.IPv6Network("2002::/16"): "a 6to4 address",
    ipaddress.IPv6Network("2001::/32"): "a Teredo address",
}


class UnsafeUrl(ValueError):
    """The URL's host is, or resolves to, an address webhooks may not reach."""


class Unresolvable(UnsafeUrl):
    """The host did not resolve (now): refused at create, but worth another try at delivery."""


def refusal(ip: IPAddress) -> str | None:
    """Why a webhook may not connect to `ip`, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        for net, what in EMBEDDING_V6.items():
            if ip in net:
                return what
    if ip.is_multicast:
        return "a multicast address"
    if not ip.is_global:
        return "not a public address"
    return None


class Resolver:
    """Names to addresses: the system's resolver, or one given name server (BULKOPS_WEBHOOK_DNS_SERVER)."""

    def __init__(self, nameserver: str | None = None, port: int = 53) -> None:
        self.dns: dns.asyncresolver.Resolver | None = None
        if nameserver:
            self.dns = dns.asyncresolver.Resolver(configure=False)
            self.dns.nameservers = [nameserver]
            self.dns.port = port
            self.dns.lifetime = RESOLVE_TIMEOUT_S
            self.dns.cache = None  # a zero-TTL answer must not be reused behind our back either

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            if self.dns is not None:
                answer = await self.dns.resolve_name(host, family=socket.AF_UNSPEC)
                found = list(answer.addresses())
            else:
                async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
                # Drop an IPv6 scope id ("fe80::1%eth0") before parsing.
                found = [str(info[4][0]).split("%")[0] for info in infos]
        except (OSError, TimeoutError, dns.exception.DNSException) as exc:
            raise Unresolvable(f"the host {host!r} does not resolve") from exc
        if not found:
            raise Unresolvable(f"the host {host!r} does not resolve")
        return list(dict.fromkeys(ipaddress.ip_address(a) for a in found))


async def vetted_addresses(
    resolver: Resolver, host: str, port: int, *, allow_private: bool
) -> list[IPAddress]:
    """Resolve `host` once; every address must pass (one bad answer taints the name)."""
    addresses = await resolver.addresses(host, port)
    if not allow_private:
        for ip in addresses:
            why = refusal(ip)
            if why:
                raise UnsafeUrl(
                    f"{host} is {ip}, {why} (BULKOPS_WEBHOOK_ALLOW_PRIVATE=true allows private addresses)"
                )
    return addresses


def url_target(url: str) -> tuple[str, int]:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise UnsafeUrl("only http and https URLs are allowed")
    if not parsed.host:
        raise UnsafeUrl("the URL has no host")
    return parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)


def check_port(port: int, ports: frozenset[int] | None) -> None:
    """Raise `UnsafeUrl` unless `port` is one webhooks may target (None: any)."""
    if ports is not None and port not in ports:
        allowed = ", ".join(map(str, sorted(ports)))
        raise UnsafeUrl(f"port {port} is not allowed for webhooks (BULKOPS_WEBHOOK_PORTS: {allowed})")


async def check_webhook_url(
    url: str, *, allow_private: bool, ports: frozenset[int] | None, resolver: Resolver | None = None
) -> None:
    """Raise `UnsafeUrl` unless the URL's port is allowed and every address of its host is public (or
    private ones are allowed)."""
    host, port = url_target(url)
    check_port(port, ports)
    if allow_private:
        return
    await vetted_addresses(resolver or Resolver(), host, port, allow_private=allow_private)
