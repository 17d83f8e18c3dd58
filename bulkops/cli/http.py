"""The HTTP plumbing the API-talking commands share: a client with the key, calls that turn a
problem+json answer into a readable error, and the consoles."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from bulkops.settings import Settings

console = Console()
err = Console(stderr=True)

ApiUrl = Annotated[
    str, typer.Option("--api-url", envvar="BULKOPS_API_URL", help="base URL of the bulkops API")
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="BULKOPS_API_KEY",
        help="tenant API key (default: the demo key `bulkops dev` stored under BULKOPS_DATA_DIR)",
    ),
]
DEFAULT_API_URL = "http://127.0.0.1:8000"

ERROR_EXIT = 2


class ApiError(Exception):
    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


# --- talking to the API ------------------------------------------------------------------------------


def client(api_url: str, api_key: str | None) -> httpx.Client:
    if not api_key:
        stored = Settings().data_dir / "demo-api-key"
        api_key = stored.read_text().strip() if stored.is_file() else None
    if not api_key:
        err.print("[red]no API key:[/] pass --api-key or set BULKOPS_API_KEY")
        raise typer.Exit(ERROR_EXIT)
    return httpx.Client(
        base_url=api_url.rstrip("/"), headers={"Authorization": f"Bearer {api_key}"}, timeout=30.0
    )


def _problem_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}: {resp.text[:300] or resp.reason_phrase}"
    if not isinstance(body, dict):
        return f"HTTP {resp.status_code}: {body}"
    text = f"{body.get('title') or resp.reason_phrase} ({resp.status_code}): {body.get('detail', '')}"
    for e in body.get("errors") or []:
        where = ".".join(str(p) for p in e.get("loc", []) if p != "body")
        text += f"\n  - {where}: {e.get('msg', '')}"
    return text


def call(http: httpx.Client, method: str, path: str, **kw: Any) -> httpx.Response:
    try:
        resp = http.request(method, path, **kw)
    except httpx.TransportError as exc:
        raise ApiError(
            f"cannot reach the API at {http.base_url} ({exc}); is `bulkops dev` running?", transient=True
        ) from exc
    if resp.status_code >= 400:
        raise ApiError(_problem_text(resp), transient=resp.status_code in (502, 503, 504))
    return resp


def fail(exc: ApiError) -> typer.Exit:
    err.print(f"[red]error:[/] {exc}", highlight=False)
    return typer.Exit(ERROR_EXIT)
