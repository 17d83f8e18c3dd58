"""`bulkops tenant …` and `bulkops orders …`: tenants, their keys, policy and webhook secrets, and
generated orders, straight against the database (helpers in `bulkops.cli.admin`).

Heavy modules are imported inside the commands, as in `bulkops.cli.app`.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import typer

from bulkops.cli import admin
from bulkops.cli.admin import console, err
from bulkops.domain.model import OrderStatus
from bulkops.settings import Settings

tenant_app = typer.Typer(help="Tenants: create, API keys, policy, webhook secrets.", no_args_is_help=True)
orders_app = typer.Typer(help="Order data helpers.", no_args_is_help=True)


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
    console.print(f"tenant:         [bold]{name}[/] (this first key is user admin's, an admin key)")
    console.print(f"API key:        {key}", soft_wrap=True)
    console.print(f"webhook secret: {secret}", soft_wrap=True)
    console.print("[yellow]Store both now: they are not shown again.[/]")


tenant_app.command("add-key")(admin.add_key)
tenant_app.command("add-user")(admin.add_user)
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

    async def seed_in(session: Any) -> int:
        if await session.scalar(select(Tenant.id).where(Tenant.id == tenant)) is None:
            return -1
        return await seed_orders(session, tenant, count, status=status)

    started = time.monotonic()
    n = admin.run_db(settings, seed_in)
    if n < 0:
        err.print(f"[red]no such tenant: {tenant}[/] (create it with `bulkops tenant create {tenant}`)")
        raise typer.Exit(1)
    console.print(f"inserted {n:,} orders for tenant {tenant} in {time.monotonic() - started:.1f}s")
