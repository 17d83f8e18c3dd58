"""OpenTelemetry traces: a tracer provider only when an OTLP endpoint is configured, and the
instrumentations that use it (FastAPI, psycopg, httpx; Temporal in `temporal_tracing`).

Nothing here touches the global tracer provider: each entry point builds one `Telemetry` (from the
standard `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or none) and hands it
down, so tests can pass their own provider and in-memory exporter. Without an endpoint `Telemetry()`
is off: no provider, no interceptor, no instrumented connection, so the default stack pays nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from psycopg import AsyncConnection
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bulkops.infra.logs import bind

log = logging.getLogger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
# Probes and scrapes every few seconds would drown the traces of real requests.
UNTRACED_URLS = "/metrics,/healthz,/readyz"
# Span attributes bulkops adds (on the HTTP span, the workflow's and each activity attempt's).
TENANT_ATTRIBUTE = "bulkops.tenant_id"
OPERATION_ATTRIBUTE = "bulkops.operation_id"
ORDER_ATTRIBUTE = "bulkops.order_id"
ATTEMPT_ATTRIBUTE = "temporalActivityAttempt"


def otlp_exporter(environ: Mapping[str, str]) -> SpanExporter:
    """The OTLP exporter the standard variables ask for (`http/protobuf` unless `grpc`)."""
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    # Each exporter reads the endpoint, headers, certificates and timeout from the environment itself.
    return GrpcSpanExporter() if protocol == "grpc" else HttpSpanExporter()


@dataclass(frozen=True)
class Telemetry:
    """This process's tracer provider, or none (off)."""

    provider: TracerProvider | None = None

    @classmethod
    def from_environment(cls, service: str, environ: Mapping[str, str] = os.environ) -> Telemetry:
        """On when an OTLP endpoint is set (and `OTEL_SDK_DISABLED` is not `true`); `service` is the
        default `service.name` (`OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` win)."""
        if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return cls()
        if not any(environ.get(name) for name in ENDPOINT_VARIABLES):
            return cls()
        named = "OTEL_SERVICE_NAME" in environ or "service.name=" in environ.get(
            "OTEL_RESOURCE_ATTRIBUTES", ""
        )
        resource = Resource.create({} if named else {SERVICE_NAME: service})
        # The sampler comes from OTEL_TRACES_SAMPLER (default: parent-based, always on).
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(otlp_exporter(environ)))
        log.info("traces exported over OTLP as %s", resource.attributes.get(SERVICE_NAME))
        return cls(provider)

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def tracer(self) -> trace.Tracer:
        assert self.provider is not None
        return self.provider.get_tracer("bulkops")

    def instrument_app(self, app: Any) -> None:
        if self.provider is not None:
            FastAPIInstrumentor.instrument_app(
                app, tracer_provider=self.provider, excluded_urls=UNTRACED_URLS
            )

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """Trace the SQL of every connection the engine opens from now on."""
        if self.provider is None:
            return
        provider = self.provider

        def connected(dbapi_connection: Any, _record: Any) -> None:
            PsycopgInstrumentor.instrument_connection(dbapi_connection.driver_connection, provider)

        event.listen(engine.sync_engine, "connect", connected)

    async def instrument_connection(self, connection: AsyncConnection) -> None:
        """A psycopg pool's `configure` hook: trace the connection's SQL."""
        if self.provider is not None:
            PsycopgInstrumentor.instrument_connection(connection, self.provider)

    def instrument_http(self, client: httpx.AsyncClient) -> None:
        if self.provider is not None:
            HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self.provider)

    def shutdown(self) -> None:
        """Export what is buffered, then stop."""
        if self.provider is not None:
            self.provider.shutdown()


_NAMES = {"tenant_id": TENANT_ATTRIBUTE, "operation_id": OPERATION_ATTRIBUTE, "order_id": ORDER_ATTRIBUTE}


def span_attributes(ids: Mapping[str, str]) -> dict[str, str]:
    """bulkops' ids (`logs.ids_of`'s names) as span attribute names."""
    return {_NAMES[k]: v for k, v in ids.items() if k in _NAMES}


def annotate(span: trace.Span, ids: Mapping[str, str]) -> None:
    if ids and span.is_recording():
        span.set_attributes(span_attributes(ids))


def tag_current(ids: Mapping[str, str]) -> None:
    """The ids go on the current span and on what this task logs from now on."""
    bind(**ids)
    annotate(trace.get_current_span(), ids)
