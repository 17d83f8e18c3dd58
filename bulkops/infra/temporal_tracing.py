"""Temporal's own tracing interceptor (`temporalio.contrib.opentelemetry`), cut into bounded traces,
and the interceptors that put bulkops' ids on spans and log records.

One trace per workflow run. Temporal's interceptor hands a run's trace context to the run it
continues as new, so a 250,000-order operation (dozens of runs) or a tenant's coordinator (which
lives for ever) would grow one trace without end. Here each continue-as-new starts a new trace whose
root (`ContinueAsNew:<workflow>`) links to the previous run's context, and a signal-with-start (the
coordinator, shared by all of a tenant's operations) starts the shared workflow in a trace of its own,
linked from the caller's span. A run is bounded by the history budget (`BULKOPS_MAX_EVENTS_PER_RUN`),
so a trace is too: a few thousand activity attempts at most.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import opentelemetry.context
from opentelemetry import trace
from opentelemetry.context import Context
from temporalio import activity, client, converter, worker
from temporalio import workflow as wf
from temporalio.contrib.opentelemetry import TracingInterceptor, TracingWorkflowInboundInterceptor

from bulkops.infra.logs import bound, ids_of
from bulkops.infra.tracing import ATTEMPT_ATTRIBUTE, Telemetry, annotate, span_attributes, tag_current
from bulkops.settings import Settings

NEW_RUN_TRACE = "__bulkops_new_run_trace"
Carrier = dict[str, Any]


class RunTracingInterceptor(TracingInterceptor):
    """`TracingInterceptor`, with a trace of its own for each run (see the module's doc)."""

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _SharedWorkflowsOwnTrace(super().intercept_client(next), self)

    def workflow_interceptor_class(
        self, input: worker.WorkflowInterceptorClassInput
    ) -> type[TracingWorkflowInboundInterceptor]:
        super().workflow_interceptor_class(input)
        input.unsafe_extern_functions[NEW_RUN_TRACE] = self._new_run_trace
        return _RunWorkflowInbound

    def _new_run_trace(
        self, previous: Carrier, name: str, attributes: Mapping[str, Any], time_ns: int
    ) -> Carrier:
        """Outside the sandbox: a zero-length root span that links to `previous`; its context."""
        linked = trace.get_current_span(self.text_map_propagator.extract(previous)).get_span_context()
        links = [trace.Link(linked)] if linked.is_valid else []
        span = self.tracer.start_span(
            name,
            Context(),
            attributes=attributes,
            links=links,
            start_time=time_ns,
            kind=trace.SpanKind.INTERNAL,
        )
        span.end(end_time=time_ns)
        carrier: Carrier = {}
        self.text_map_propagator.inject(carrier, trace.set_span_in_context(span))
        return carrier

    def carrier_of(self, headers: Mapping[str, Any]) -> Carrier | None:
        payload = headers.get(self.header_key)
        return converter.PayloadConverter.default.from_payloads([payload])[0] if payload else None


class _SharedWorkflowsOwnTrace(client.OutboundInterceptor):
    def __init__(self, next: client.OutboundInterceptor, root: RunTracingInterceptor) -> None:
        super().__init__(next)
        self.root = root

    async def start_workflow(self, input: client.StartWorkflowInput) -> client.WorkflowHandle[Any, Any]:
        if not input.start_signal:
            return await super().start_workflow(input)
        caller = trace.get_current_span()
        token = opentelemetry.context.attach(Context())
        try:
            handle = await super().start_workflow(input)
        finally:
            opentelemetry.context.detach(token)
        started = self.root.carrier_of(input.headers)
        if started and caller.is_recording():
            caller.add_link(
                trace.get_current_span(self.root.text_map_propagator.extract(started)).get_span_context()
            )
        return handle


class _RunWorkflowInbound(TracingWorkflowInboundInterceptor):
    """In the sandbox: the run's spans carry the operation's ids; continue-as-new cuts the trace."""

    _attributes: Mapping[str, str] = {}

    def init(self, outbound: worker.WorkflowOutboundInterceptor) -> None:
        super().init(_CutAtContinueAsNew(outbound, self))

    async def execute_workflow(self, input: worker.ExecuteWorkflowInput) -> Any:
        self._attributes = span_attributes(ids_of(input.args[0])) if input.args else {}
        return await super().execute_workflow(input)

    def _completed_span(self, span_name: str, **kwargs: Any) -> None:
        kwargs["additional_attributes"] = {**self._attributes, **(kwargs.get("additional_attributes") or {})}
        super()._completed_span(span_name, **kwargs)


class _CutAtContinueAsNew(worker.WorkflowOutboundInterceptor):
    def __init__(self, next: worker.WorkflowOutboundInterceptor, root: _RunWorkflowInbound) -> None:
        super().__init__(next)
        self.root = root

    def continue_as_new(self, input: worker.ContinueAsNewInput) -> NoReturn:
        # Temporal's outbound (around this one) has put this run's context in the headers. A replay
        # (a query of the ended run, a worker that lost it from its cache) runs this again: its
        # command is history already, and a new root would be a trace with nothing in it.
        payload = input.headers.get(self.root.header_key)
        if payload is not None and not wf.unsafe.is_replaying():
            previous = self.root.payload_converter.from_payloads([payload])[0]
            info = wf.info()
            attributes = {"temporalWorkflowID": info.workflow_id, "temporalRunID": info.run_id}
            carrier = wf.extern_functions()[NEW_RUN_TRACE](
                previous,
                f"ContinueAsNew:{info.workflow_type}",
                {**attributes, **self.root._attributes},
                wf.time_ns(),
            )
            input.headers = {
                **input.headers,
                self.root.header_key: self.root.payload_converter.to_payloads([carrier])[0],
            }
        super().continue_as_new(input)


class _StartIds(client.Interceptor):
    """Client side: a started workflow's ids go on the caller's span (the HTTP request's) and logs."""

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _StartIdsOutbound(next)


class _StartIdsOutbound(client.OutboundInterceptor):
    async def start_workflow(self, input: client.StartWorkflowInput) -> client.WorkflowHandle[Any, Any]:
        tag_current(ids_of(input.args[0]) if input.args else {})
        return await super().start_workflow(input)


class ActivityIds(worker.Interceptor):
    """Worker side: each activity attempt's span and log records carry its tenant, operation, order."""

    def intercept_activity(
        self, next: worker.ActivityInboundInterceptor
    ) -> worker.ActivityInboundInterceptor:
        return _ActivityIdsInbound(next)


class _ActivityIdsInbound(worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: worker.ExecuteActivityInput) -> Any:
        ids = ids_of(input.args[0]) if input.args else {}
        span = trace.get_current_span()
        annotate(span, ids)
        if span.is_recording():
            span.set_attribute(ATTEMPT_ATTRIBUTE, activity.info().attempt)
        with bound(ids):
            return await super().execute_activity(input)


def client_interceptors(settings: Settings, telemetry: Telemetry) -> list[client.Interceptor]:
    """Outermost first: the ids land on the caller's span, around Temporal's own start span."""
    found: list[client.Interceptor] = []
    if telemetry.enabled or settings.log_format == "json":
        found.append(_StartIds())
    if telemetry.enabled:
        found.append(RunTracingInterceptor(telemetry.tracer()))
    return found


def worker_interceptors(settings: Settings, telemetry: Telemetry) -> list[worker.Interceptor]:
    """Inside the client's tracing interceptor, so an attempt's span is the current one."""
    return [ActivityIds()] if telemetry.enabled or settings.log_format == "json" else []
