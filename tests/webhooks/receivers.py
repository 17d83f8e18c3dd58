"""Hostile and friendly webhook receivers on real loopback sockets, and a DNS stub that rebinds."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
from sqlalchemy import insert

from bulkops.chaos.receiver import Delivery, read_request
from bulkops.domain.model import operation_workflow_id
from bulkops.store.tables import OPERATIONS
from tests.harness import Harness, Tenant

Mode = Literal["ok", "endless", "silent"]


@dataclass
class Receiver:
    """`ok`: 204 to every POST; `endless`: 200 and a chunked body that never ends; `silent`: reads
    the request and never answers."""

    mode: Mode
    hits: list[Delivery] = field(default_factory=list)
    connections: int = 0
    body_bytes_sent: int = 0
    url: str = ""
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            self.hits.append(await read_request(reader))
            if self.mode == "ok":
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            elif self.mode == "endless":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
                while True:
                    writer.write(chunk)
                    await writer.drain()
                    self.body_bytes_sent += 65536
            else:
                await asyncio.Event().wait()
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def receiver(mode: Mode, host: str = "127.0.0.1") -> AsyncIterator[Receiver]:
    r = Receiver(mode)
    server = await asyncio.start_server(r.handle, "127.0.0.1", 0)
    r.url = f"http://{host}:{server.sockets[0].getsockname()[1]}/hooks/bulkops"
    try:
        yield r
    finally:
        server.close()
        for writer in r.writers:  # hang up on whoever still waits for an answer
            writer.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2)


@dataclass
class DnsStub(asyncio.DatagramProtocol):
    """Answers the n-th A query for any name with `answers[n]` (the last one from then on), TTL 0;
    an answer "NXDOMAIN" says the name does not exist."""

    answers: list[str]
    a_queries: int = 0
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.DatagramTransport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        if question.rdtype == dns.rdatatype.A:
            ip = self.answers[min(self.a_queries, len(self.answers) - 1)]
            self.a_queries += 1
            if ip == "NXDOMAIN":
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                response.answer.append(dns.rrset.from_text(question.name, 0, "IN", "A", ip))
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@contextlib.asynccontextmanager
async def dns_stub(*answers: str) -> AsyncIterator[tuple[DnsStub, int]]:
    """A name server on loopback only; yields it and its port."""
    transport, stub = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: DnsStub(list(answers)), local_addr=("127.0.0.1", 0)
    )
    try:
        yield stub, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


async def ended_operation(h: Harness, tenant: Tenant, notify_url: str) -> uuid.UUID:
    """An ended operation's summary row (what the webhook activity reads), written directly."""
    op_id = uuid.uuid4()
    now = datetime.now(UTC)
    async with h.sessionmaker() as session, session.begin():
        await session.execute(
            insert(OPERATIONS).values(
                id=op_id,
                lineage_id=op_id,
                tenant_id=tenant.id,
                operation_type="BULK_CANCEL",
                status="COMPLETED",
                parameters={"reason": "x"},
                selection={"order_ids_count": 1},
                max_concurrency=1,
                workflow_id=operation_workflow_id(op_id),
                notify_url=notify_url,
                total_count=1,
                processed_count=1,
                success_count=1,
                started_at=now,
                completed_at=now,
                errors=[],
            )
        )
    return op_id
