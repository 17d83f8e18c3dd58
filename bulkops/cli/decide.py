"""`bulkops approve ID`, `bulkops reject ID` and `bulkops revert ID`, through the API like any client."""

from __future__ import annotations

from typing import Annotated

import typer

from bulkops.cli.http import DEFAULT_API_URL, ApiError, ApiKey, ApiUrl, call, client, console, fail

Comment = Annotated[str | None, typer.Option("--comment", "-m", help="kept in the audit trail")]
OperationId = Annotated[str, typer.Argument(help="the operation's id")]


def _decide(verb: str, operation_id: str, comment: str | None, api_url: str, api_key: str | None) -> None:
    with client(api_url, api_key) as http:
        try:
            op = call(
                http, "POST", f"/v1/bulk-operations/{operation_id}/{verb}", json={"comment": comment}
            ).json()
        except ApiError as exc:
            raise fail(exc) from None
    reason = f", {op['failure_reason']}" if op.get("failure_reason") else ""
    done = {"approve": "approved", "reject": "rejected"}[verb]
    console.print(f"{done} [cyan]{op['id']}[/]: now {op['status']}{reason}", highlight=False)


def approve(
    operation_id: OperationId,
    comment: Comment = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
) -> None:
    """Approve an operation that awaits approval (an approver key other than its creator's)."""
    _decide("approve", operation_id, comment, api_url, api_key)


def reject(
    operation_id: OperationId,
    comment: Comment = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
) -> None:
    """Reject an operation that awaits approval: it ends CANCELLED (APPROVAL_REJECTED), touching nothing."""
    _decide("reject", operation_id, comment, api_url, api_key)


def revert(operation_id: OperationId, api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None) -> None:
    """Revert an ended BULK_UPDATE: a new operation puts back the values it changed; prints its id."""
    with client(api_url, api_key) as http:
        try:
            op = call(http, "POST", f"/v1/bulk-operations/{operation_id}/revert").json()
        except ApiError as exc:
            raise fail(exc) from None
    console.print(
        f"started revert [cyan]{op['id']}[/] of {operation_id} ({op['total_count']:,} orders)",
        highlight=False,
    )
    console.print(f"watch it: bulkops watch {op['id']}", highlight=False)
