"""A harness whose app, client and workers trace into an in-memory exporter (no global provider)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bulkops.infra.temporal_client import connect
from bulkops.infra.tracing import Telemetry
from tests.harness import Harness, Stack, stack_settings


@dataclass
class Traced:
    h: Harness
    exporter: InMemorySpanExporter

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


@contextlib.asynccontextmanager
async def traced_harness(stack: Stack, **overrides: Any) -> AsyncIterator[Traced]:
    """`overrides`: more settings, by their environment names."""
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = Telemetry(provider)
    settings = stack_settings(
        stack,
        BULKOPS_ACTIVITY_MAX_ATTEMPTS=3,
        BULKOPS_AUTH_CACHE_S=0,
        BULKOPS_WEBHOOK_ALLOW_PRIVATE=True,
        **overrides,
    )
    client = await connect(settings, telemetry)
    try:
        async with Harness.open(stack, client, settings, telemetry) as h:
            yield Traced(h, exporter)
    finally:
        provider.shutdown()


async def eventually(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]
