"""`bulkops watch`: a live progress bar polling the API until the operation ends, then its summary."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from bulkops.cli.http import DEFAULT_API_URL, ApiError, ApiKey, ApiUrl, call, client, console, err, fail
from bulkops.domain.model import OperationStatus

FAILED_EXIT = 1


def watch(
    operation_id: Annotated[str, typer.Argument(help="the bulk operation id")],
    interval: Annotated[float, typer.Option(min=0.1, help="seconds between polls")] = 0.5,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
) -> None:
    """Live progress until the operation ends, then its summary. Exits 1 if it ends FAILED."""
    with client(api_url, api_key) as http:
        raise typer.Exit(follow(http, operation_id, interval))


def _fmt_rate(op: dict[str, Any]) -> str:
    rate = op.get("orders_per_second")
    return f"{rate:,.1f}/s" if rate else "-/s"


def _fmt_eta(op: dict[str, Any]) -> str:
    eta = op.get("eta_seconds")
    if eta is None:
        return "-"
    minutes, seconds = divmod(round(eta), 60)
    return f"{minutes}:{seconds:02d}"


# How long a watch rides out an unreachable or slow API (a restart, a busy dev box) before giving up.
PATIENCE_S = 300.0


def _poll(http: httpx.Client, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + PATIENCE_S
    warned = False
    while True:
        try:
            return call(http, "GET", path).json()  # type: ignore[no-any-return]
        except ApiError as exc:
            if not exc.transient or time.monotonic() > deadline:
                raise
            if not warned:
                err.print(f"[yellow]{exc}[/] - retrying", highlight=False)
                warned = True
            time.sleep(1.0)


def follow(http: httpx.Client, operation_id: str, interval: float) -> int:
    path = f"/v1/bulk-operations/{operation_id}"
    try:
        op = call(http, "GET", path).json()
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[green]✔ {task.fields[ok]}[/] [red]✘ {task.fields[failed]}[/]"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA {task.fields[eta]}"),
            console=console,
        )
        with progress:
            task: TaskID = progress.add_task("", total=None, ok=0, failed=0, rate="", eta="")
            while True:
                progress.update(
                    task,
                    description=f"{op['operation_type']} {op['status']:<15}",
                    total=op["total_count"] or None,
                    completed=op["processed_count"],
                    ok=f"{op['success_count']:,}",
                    failed=f"{op['failed_count']:,}",
                    rate=_fmt_rate(op),
                    eta=_fmt_eta(op),
                )
                if OperationStatus(op["status"]).terminal:
                    break
                time.sleep(interval)
                op = _poll(http, path)
    except ApiError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:
        err.print("stopped watching; the operation keeps running")
        return 130
    _print_summary(op)
    return FAILED_EXIT if op["status"] == OperationStatus.FAILED else 0


_STATUS_STYLE = {"COMPLETED": "green", "PARTIAL_SUCCESS": "yellow", "FAILED": "red", "CANCELLED": "magenta"}


def _print_summary(op: dict[str, Any]) -> None:
    table = Table(title="bulk operation", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    style = _STATUS_STYLE.get(op["status"], "white")
    duration = "-"
    if op.get("started_at") and op.get("completed_at"):
        secs = datetime.fromisoformat(op["completed_at"]) - datetime.fromisoformat(op["started_at"])
        duration = f"{secs.total_seconds():.1f}s"
    rows = [
        ("id", op["id"]),
        ("type", op["operation_type"]),
        ("status", f"[{style}]{op['status']}[/]"),
        ("total", f"{op['total_count']:,}"),
        ("processed", f"{op['processed_count']:,}"),
        ("succeeded", f"{op['success_count']:,}"),
        ("failed", f"{op['failed_count']:,}"),
        ("rate", _fmt_rate(op)),
        ("duration", duration),
    ]
    if op.get("failure_reason"):
        rows.append(("failure reason", op["failure_reason"]))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    console.print(f"Temporal UI: {op['links']['temporal_ui']}", soft_wrap=True, highlight=False)
    errors = op.get("errors") or []
    if errors:
        shown = errors[:10]
        et = Table(title=f"first {len(shown)} of {op['failed_count']:,} failures", title_justify="left")
        for col in ("order", "code", "message", "retryable"):
            et.add_column(col)
        for e in shown:
            et.add_row(str(e["order_id"]), e["code"], e["message"], "yes" if e["retryable"] else "no")
        console.print(et)
        if op["failed_count"] > len(shown):
            console.print(f"all failures: GET {op['links']['items']}?status=FAILED", highlight=False)
