"""`bulkops start`: build a create request from options, as any API client would."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from bulkops.cli.http import (
    DEFAULT_API_URL,
    ApiError,
    ApiKey,
    ApiUrl,
    call,
    client,
    console,
    fail,
)
from bulkops.cli.watch import follow
from bulkops.domain.model import OperationType, OrderStatus

# Parameter values that are always text / integers, whatever they look like.
_STRING_KEYS = {"reason", "note", "shipping_method", "format"}
_INT_KEYS = {"amount_cents"}
_LIST_KEYS = {"add_tags", "remove_tags", "fields"}


# --- start -------------------------------------------------------------------------------------------


def parse_type(raw: str) -> OperationType:
    name = raw.strip().upper().replace("-", "_")
    if not name.startswith("BULK_"):
        name = "BULK_" + name
    try:
        return OperationType(name)
    except ValueError:
        raise typer.BadParameter("one of cancel, refund, update, export") from None


def _value(key: str, raw: str) -> Any:
    if key in _STRING_KEYS:
        return raw
    if key in _INT_KEYS:
        try:
            return int(raw)
        except ValueError:
            raise typer.BadParameter(f"{key} must be an integer, got {raw!r}") from None
    if key in _LIST_KEYS and not raw.lstrip().startswith("["):
        return [part.strip() for part in raw.split(",") if part.strip()]
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`k=v` pairs into the parameters object; dotted keys nest (`set.note=hi`)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected key=value, got {pair!r}")
        *parents, leaf = key.strip().split(".")
        node = out
        for p in parents:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise typer.BadParameter(f"{key}: {p} is already a value")
            node = child
        node[leaf] = _value(leaf, raw)
    return out


def _read_ids(path: Path) -> list[str]:
    text = sys.stdin.read() if str(path) == "-" else path.read_text()
    ids = [line.split("#", 1)[0].strip().strip(",") for line in text.splitlines()]
    return [i for i in ids if i]


def start(
    operation_type: Annotated[str, typer.Argument(help="cancel | refund | update | export (or BULK_…)")],
    ids_file: Annotated[
        Path | None, typer.Option("--ids-file", help="order ids, one per line ('-' reads stdin)")
    ] = None,
    status: Annotated[list[OrderStatus] | None, typer.Option("--status", help="select by status")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="select orders with any of these")] = None,
    customer_email: Annotated[str | None, typer.Option(help="select one customer's orders")] = None,
    created_from: Annotated[datetime | None, typer.Option(help="orders created at or after")] = None,
    created_to: Annotated[datetime | None, typer.Option(help="orders created before")] = None,
    all_orders: Annotated[bool, typer.Option("--all", help="select every order of the tenant")] = False,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="parameter k=v (repeat; set.note=… nests)")
    ] = None,
    max_concurrency: Annotated[int | None, typer.Option(min=1, max=500)] = None,
    max_failure_ratio: Annotated[
        float | None, typer.Option(min=0, max=1, help="stop FAILED when this share of orders fails")
    ] = None,
    notify_url: Annotated[str | None, typer.Option(help="webhook called once when it ends")] = None,
    start_at: Annotated[
        datetime | None, typer.Option(help="start then, not now (UTC unless it has an offset)")
    ] = None,
    max_orders_per_second: Annotated[
        float | None, typer.Option(min=0.01, help="pace of order starts")
    ] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="makes a repeated start safe")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count and sample; start nothing")] = False,
    then_watch: Annotated[bool, typer.Option("--watch", help="watch it until it ends")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the new id")] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
) -> None:
    """Start a bulk operation over an ids file or a filter; prints its id and Temporal UI link."""
    op_type = parse_type(operation_type)
    filt: dict[str, Any] = {}
    if status:
        filt["statuses"] = [s.value for s in status]
    if tag:
        filt["tags_any"] = tag
    if customer_email:
        filt["customer_email"] = customer_email
    if created_from:
        filt["created_from"] = created_from.isoformat()
    if created_to:
        filt["created_to"] = created_to.isoformat()
    body: dict[str, Any] = {"operation_type": op_type.value, "parameters": parse_params(param or [])}
    if ids_file is not None:
        if filt or all_orders:
            raise typer.BadParameter("give --ids-file or filter options (--status, --tag, …), not both")
        body["order_ids"] = _read_ids(ids_file)
    elif filt or all_orders:
        body["filter"] = filt
    else:
        raise typer.BadParameter("select orders with --ids-file, --status, --tag, … or --all")
    if max_concurrency is not None:
        body["max_concurrency"] = max_concurrency
    if max_failure_ratio is not None:
        body["failure_threshold"] = {"max_failure_ratio": max_failure_ratio}
    if notify_url:
        body["notify_url"] = notify_url
    if start_at is not None:
        body["start_at"] = start_at.isoformat()
    if max_orders_per_second is not None:
        body["max_orders_per_second"] = max_orders_per_second
    if dry_run:
        body["dry_run"] = True
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}

    with client(api_url, api_key) as http:
        try:
            resp = call(http, "POST", "/v1/bulk-operations", json=body, headers=headers)
        except ApiError as exc:
            raise fail(exc) from None
        op = resp.json()
        if dry_run:
            _print_dry_run(op)
            return
        if quiet:
            console.print(op["id"], highlight=False)
        else:
            again = " (existing operation for this Idempotency-Key)" if resp.status_code == 200 else ""
            size = f"{op['total_count']:,} orders" if op["total_count"] else "selecting orders"
            console.print(
                f"started [bold]{op['operation_type']}[/] [cyan]{op['id']}[/] "
                f"({op['status']}, {size}){again}",
                highlight=False,
            )
            console.print(f"Temporal UI: {op['links']['temporal_ui']}", soft_wrap=True, highlight=False)
            if op["status"] == "AWAITING_APPROVAL":
                reasons = "; ".join(op["approval"]["reasons"])
                predicted = op["approval"]["prediction"]["matched_count"]
                console.print(f"predicted:   {predicted:,} orders match", highlight=False)
                console.print(f"needs approval ({reasons}): bulkops approve {op['id']}", highlight=False)
            console.print(f"watch it:    bulkops watch {op['id']}", highlight=False)
        if then_watch:
            raise typer.Exit(follow(http, op["id"], 0.5))


def _print_dry_run(result: dict[str, Any]) -> None:
    console.print(
        f"dry run: [bold]{result['matched_count']:,}[/] orders match; "
        f"{result['would_fail_count']:,} would fail {result.get('would_fail_by_code') or ''}"
    )
    for row in result.get("sample", [])[:10]:
        console.print(f"  {json.dumps(row, default=str)}", highlight=False, soft_wrap=True)
