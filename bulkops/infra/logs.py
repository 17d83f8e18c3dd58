"""One logging set-up for every entry point: plain text (the default) or one JSON object a line.

`BULKOPS_LOG_FORMAT=json` makes each record of the API, the worker and the workflows one JSON object
with, where they apply: `trace_id` / `span_id` (the current OpenTelemetry span), `tenant_id`,
`operation_id`, `order_id` (bound for the request or activity attempt with `bind` / `bound`, or read
from the workflow's id and search attributes) and the Temporal ids that `workflow.logger` and
`activity.logger` put in `extra` (`workflow_id`, `run_id`, `activity_type`, `attempt`, ...).
"""

from __future__ import annotations

import contextlib
import logging
import logging.config
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter
from temporalio import activity, workflow

from bulkops.domain.model import operation_id_of_workflow
from bulkops.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
ID_FIELDS = ("tenant_id", "operation_id", "order_id")

# The ids of what this task is doing (a request, an activity attempt); contextvars follow the task.
_IDS: ContextVar[Mapping[str, str]] = ContextVar("bulkops_log_ids", default=MappingProxyType({}))


def ids_of(value: object) -> dict[str, str]:
    """`tenant_id`, `operation_id`, `order_id` of an input or row that has them, as text."""
    found = {name: getattr(value, name, None) for name in ID_FIELDS}
    return {name: str(v) for name, v in found.items() if v is not None}


def bind(**ids: object) -> None:
    """Add ids to every record this task (and the tasks it starts) logs from now on."""
    _IDS.set({**_IDS.get(), **{k: str(v) for k, v in ids.items() if v is not None}})


@contextlib.contextmanager
def bound(ids: Mapping[str, str]) -> Iterator[None]:
    """Add ids to the records logged inside the block."""
    token = _IDS.set({**_IDS.get(), **ids})
    try:
        yield
    finally:
        _IDS.reset(token)


class JsonFormatter(_JsonFormatter):
    """python-json-logger's formatter, with the ids flattened to top-level fields."""

    def __init__(self, *args: Any, tenant_attribute: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", True)
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)
        # The search attribute a workflow's tenant is in (workflow records carry no input).
        self.tenant_attribute = tenant_attribute

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        # Temporal's extras, flattened; the full workflow Info is read here, never serialised.
        wf: Mapping[str, Any] = record.__dict__.pop("temporal_workflow", None) or {}
        act: Mapping[str, Any] = record.__dict__.pop("temporal_activity", None) or {}
        info = record.__dict__.pop("workflow_info", None)
        super().add_fields(log_data, record, message_dict)
        log_data.update(_IDS.get())
        if wf:
            log_data.update({"workflow_id": wf.get("workflow_id"), "run_id": wf.get("run_id")})
            log_data.update(workflow_type=wf.get("workflow_type"), task_queue=wf.get("task_queue"))
        if act:
            log_data.update({"workflow_id": act.get("workflow_id"), "run_id": act.get("workflow_run_id")})
            log_data.update(activity_type=act.get("activity_type"), activity_id=act.get("activity_id"))
            log_data.update(attempt=act.get("attempt"), task_queue=act.get("task_queue"))
        if "operation_id" not in log_data and log_data.get("workflow_id"):
            op = operation_id_of_workflow(str(log_data["workflow_id"]))
            if op:
                log_data["operation_id"] = op
        if "tenant_id" not in log_data and info is not None and self.tenant_attribute:
            for pair in info.typed_search_attributes:
                if pair.key.name == self.tenant_attribute:
                    log_data["tenant_id"] = pair.value
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            log_data["trace_id"] = format(span.trace_id, "032x")
            log_data["span_id"] = format(span.span_id, "016x")


def log_config(settings: Settings, *, tenant_attribute: str | None = None) -> dict[str, Any]:
    """A `logging.config.dictConfig` for this process (also given to uvicorn as its `log_config`)."""
    formatter: dict[str, Any] = {"format": TEXT_FORMAT}
    if settings.log_format == "json":
        formatter = {"()": f"{__name__}.JsonFormatter", "tenant_attribute": tenant_attribute}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"bulkops": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "bulkops", "stream": "ext://sys.stderr"}
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        # uvicorn's loggers hand their records to the root's handler instead of their own.
        "loggers": {
            name: {"level": "INFO", "handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def setup_logging(settings: Settings, *, tenant_attribute: str | None = None) -> None:
    """Configure this process's logging (entry points call it once, before they log)."""
    logging.config.dictConfig(log_config(settings, tenant_attribute=tenant_attribute))
    configure_temporal_loggers(settings)


def configure_temporal_loggers(settings: Settings) -> None:
    """What Temporal's workflow and activity loggers add to each record, for this log format."""
    # The full workflow Info rides on workflow records, so the formatter can find the tenant.
    workflow.logger.full_workflow_info_on_extra = settings.log_format == "json"
    # The ids are fields of their own: the text appended to each message would say them twice.
    workflow.logger.workflow_info_on_message = settings.log_format != "json"
    activity.logger.activity_info_on_message = settings.log_format != "json"
