"""A harness whose app, client and workers trace into an in-memory exporter (no global provider)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
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


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def picture(spans: list[ReadableSpan], trace_id: int) -> str:
    """One trace as an indented tree (offset from its first span, duration, name, bulkops' ids), the
    picture the README shows; SQL spans are folded into a count under their parent."""
    ours = [s for s in spans if s.context.trace_id == trace_id]
    ids = {s.context.span_id for s in ours}
    children: dict[int | None, list[ReadableSpan]] = {}
    for s in ours:
        parent = s.parent.span_id if s.parent and s.parent.span_id in ids else None
        children.setdefault(parent, []).append(s)
    t0 = min(s.start_time or 0 for s in ours)
    lines: list[str] = []

    def is_sql(s: ReadableSpan) -> bool:
        return "postgresql" in str(s.attributes)

    def draw(parent: int | None, depth: int) -> None:
        kids = sorted(children.get(parent, []), key=lambda s: s.start_time or 0)
        sql = [s for s in kids if is_sql(s)]
        if sql:
            lines.append(f"{'':>20}{'  ' * depth}· {len(sql)} SQL statement(s)")
        for s in kids:
            if is_sql(s):
                continue
            a = s.attributes or {}
            tags = " ".join(
                f"{k.split('.')[-1].removeprefix('temporalActivity').lower()}={v}"
                for k, v in a.items()
                if k in ("bulkops.order_id", "temporalActivityAttempt")
            )
            failed = " ✗" if s.status.status_code.name == "ERROR" else ""
            start_ms = ((s.start_time or 0) - t0) / 1e6
            took_ms = ((s.end_time or 0) - (s.start_time or 0)) / 1e6
            lines.append(
                f"{start_ms:>8.1f}ms {took_ms:>8.1f}ms {'  ' * depth}{s.name}{failed} {tags}".rstrip()
            )
            draw(s.context.span_id, depth + 1)

    draw(None, 0)
    return "\n".join(["   start      took  span", *lines])
