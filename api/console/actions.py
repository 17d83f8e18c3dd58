"""The buttons an operation's page offers: each posts to the `/v1` route of the same name, after a
confirmation. Which apply is read off the status shown and the key's role; the workflow's update
validators and the API's role checks have the last word (a refusal shows the API's 409/403 inline).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from api.console.render import Console
from bulkops.domain.model import OperationStatus, OperationType
from bulkops.domain.views import BulkOperationRead


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    url: str
    confirm: str
    danger: bool = False
    follow: bool = False  # the answer is a new operation: open its page
    comment: bool = False  # approve / reject take an optional comment
    idempotency_key: str = ""


def decisions(op: BulkOperationRead, console: Console) -> list[Action]:
    if op.status != OperationStatus.AWAITING_APPROVAL or not console.may("approve"):
        return []
    base = f"/v1/bulk-operations/{op.id}"
    return [
        Action(
            "approve",
            "Approve",
            f"{base}/approve",
            "It starts (or waits for its start time) at once.",
            comment=True,
        ),
        Action(
            "reject",
            "Reject",
            f"{base}/reject",
            "It ends CANCELLED (APPROVAL_REJECTED) and touches no order.",
            danger=True,
            comment=True,
        ),
    ]


def controls(op: BulkOperationRead, console: Console, retryable: int) -> list[Action]:
    if not console.may("control"):
        return []
    base, status = f"/v1/bulk-operations/{op.id}", op.status
    out = []
    if status == OperationStatus.PROCESSING:
        out.append(Action("pause", "Pause", f"{base}/pause", "No new orders start until it is resumed."))
    if status == OperationStatus.PAUSED:
        out.append(Action("resume", "Resume", f"{base}/resume", "Orders start again where it stopped."))
    if not status.terminal:
        out.append(
            Action(
                "cancel",
                "Cancel",
                f"{base}/cancel",
                "Orders not processed yet are left alone; those already processed stay done.",
                danger=True,
            )
        )
    # One key per page: a second click (or a reload's resubmit) answers the operation it started.
    key = str(uuid.uuid4())
    if status.terminal and retryable:
        out.append(
            Action(
                "retry",
                "Retry failures",
                f"{base}/retry",
                "Starts a new operation over the failed orders whose failure is retryable.",
                follow=True,
                idempotency_key=f"{key}-retry",
            )
        )
    if status.terminal and op.failed_count:
        out.append(
            Action(
                "retry-all",
                "Retry all failed",
                f"{base}/retry?all_failed=true",
                "Starts a new operation over every failed order.",
                follow=True,
                idempotency_key=f"{key}-all",
            )
        )
    if status.terminal and op.operation_type == OperationType.BULK_UPDATE and op.success_count:
        out.append(
            Action(
                "revert",
                "Revert",
                f"{base}/revert",
                "Starts a new operation that restores what this update changed; orders changed since "
                "are left alone (ORDER_CHANGED_SINCE).",
                follow=True,
                idempotency_key=f"{key}-revert",
            )
        )
    return out
