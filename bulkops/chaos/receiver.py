"""The soak's completion-webhook receiver: a real HTTP server on loopback that keeps every delivery
(and answers 500 to some first attempts, so that Temporal's retries of deliveries are exercised)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


async def read_request(reader: asyncio.StreamReader) -> Delivery:
    """One HTTP/1.1 request off the socket: its path, headers (lower-cased names) and body."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    path = head[0].split(" ")[1] if " " in head[0] else "/"
    pairs = (line.partition(":") for line in head[1:] if line)
    headers = {k.strip().lower(): v.strip() for k, _, v in pairs}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Delivery(path, headers, body)


@dataclass
class Receiver:
    refuse_ratio: float
    rng: random.Random
    deliveries: list[Delivery] = field(default_factory=list)
    refused: int = 0
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            delivery = await read_request(reader)
            if self.rng.random() < self.refuse_ratio:
                self.refused += 1
                writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
            else:
                self.deliveries.append(delivery)
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def webhook_receiver(seed: int, refuse_ratio: float = 0.2) -> AsyncIterator[Receiver]:
    receiver = Receiver(refuse_ratio, random.Random(seed))
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hooks"
    try:
        yield receiver
    finally:
        server.close()
        await server.wait_closed()
