"""One order's step inside `BulkOperationWorkflow`: run its activity, fold its outcome into the counters.

Deterministic code only (called from the workflow): stdlib, `temporalio` and our models.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from activities.contracts import (
    AUTHORITY_REFUSED,
    PROCESS_ORDER,
    RECORD_FAILURE,
    REVERT_ORDER,
    OrderOutcome,
    ProcessOrderInput,
    RecordFailureInput,
    Target,
)
from bulkops.domain.model import MAX_ERROR_SAMPLE, ErrorSample, ItemStatus, fairness_key
from workflows.bookkeeping import BOOKKEEPING_RETRY, BOOKKEEPING_TIMEOUT
from workflows.contracts import BulkOperationInput, RunState


@functools.lru_cache(maxsize=1024)
def order_priority(tenant_id: str) -> Priority:
    """The task queue dispatches a backlog round-robin across tenants (README, Performance); built
    once per tenant, not once per order."""
    return Priority(fairness_key=fairness_key(tenant_id))


@functools.cache
def order_retry(initial_interval_ms: int, max_attempts: int) -> RetryPolicy:
    """Built once per setting, not once per order."""
    return RetryPolicy(
        initial_interval=timedelta(milliseconds=initial_interval_ms),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=max_attempts,
    )


async def run_order(inp: BulkOperationInput, target: Target) -> OrderOutcome:
    """The order's outcome: from its activity, or — once a transient fault outlasted the retry
    policy — a `RETRIES_EXHAUSTED` failure recorded in its place (still exactly one outcome). A
    refusal (the operation's row does not back this workflow's input) raises `ActivityError`."""
    arg = ProcessOrderInput(
        operation_id=inp.operation_id,
        tenant_id=inp.tenant_id,
        operation_type=inp.operation_type,
        order_id=target.order_id,
        seq=target.seq,
        parameters=inp.parameters,
    )
    options: dict[str, Any] = {
        "start_to_close_timeout": timedelta(seconds=inp.activity_timeout_s),
        "retry_policy": order_retry(inp.activity_initial_interval_ms, inp.activity_max_attempts),
        "summary": f"{inp.operation_type.value} order {target.order_id}",
    }
    # A revert puts back what the update it reverts recorded; anything else applies the parameters.
    step = REVERT_ORDER if inp.revert_of is not None else PROCESS_ORDER
    try:
        if inp.local_activities:
            # Same activity, same retry policy, recorded as a marker: no task-queue round trip.
            return await workflow.execute_local_activity(step, arg, result_type=OrderOutcome, **options)
        return await workflow.execute_activity(
            step,
            arg,
            result_type=OrderOutcome,
            priority=order_priority(inp.tenant_id),
            **options,
        )
    except ActivityError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == AUTHORITY_REFUSED:
            raise  # not this workflow's to run: record nothing, the workflow fails
        message = str(cause.message if cause is not None and hasattr(cause, "message") else err)
        return await workflow.execute_activity(
            RECORD_FAILURE,
            RecordFailureInput(
                operation_id=inp.operation_id,
                operation_type=inp.operation_type,
                tenant_id=inp.tenant_id,
                order_id=target.order_id,
                seq=target.seq,
                message=message or "retries exhausted",
            ),
            result_type=OrderOutcome,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )


def count_outcome(s: RunState, outcome: OrderOutcome) -> None:
    s.processed_count += 1
    if outcome.status == ItemStatus.SUCCEEDED:
        s.success_count += 1
        return
    s.failed_count += 1
    if len(s.errors) < MAX_ERROR_SAMPLE and outcome.error_code is not None:
        s.errors.append(
            ErrorSample(
                order_id=outcome.order_id,
                code=outcome.error_code,
                message=outcome.error_message or "",
                retryable=outcome.retryable,
            )
        )


def threshold_exceeded(inp: BulkOperationInput, s: RunState) -> bool:
    th = inp.failure_threshold
    return (
        th is not None
        and s.processed_count >= th.min_processed
        and s.failed_count / s.processed_count > th.max_failure_ratio
    )
