"""Connect to Temporal with the pydantic data converter (and API key / mTLS when configured)."""

from __future__ import annotations

from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from bulkops.infra.temporal_tracing import client_interceptors
from bulkops.infra.tracing import Telemetry
from bulkops.settings import Settings

# The one converter of every payload: the client's, and so the workers' and the replayer's.
DATA_CONVERTER = pydantic_data_converter


async def connect(
    settings: Settings, telemetry: Telemetry | None = None, runtime: Runtime | None = None
) -> Client:
    """`telemetry` adds the tracing (and log id) interceptors, which the workers on this client
    inherit; `runtime` is the worker's, when it exports the SDK's metrics."""
    tls: TLSConfig | bool = False
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
        )
    elif settings.temporal_api_key:
        tls = True
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key,
        tls=tls,
        data_converter=DATA_CONVERTER,
        interceptors=client_interceptors(settings, telemetry or Telemetry()),
        runtime=runtime,
    )
