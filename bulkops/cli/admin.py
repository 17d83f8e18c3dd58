"""Tenant administration straight against the database (`bulkops tenant …`): the helpers those
commands share, and the commands for keys with roles and the tenant's approval and pace policy.

Heavy modules are imported inside the commands, as in `bulkops.cli.app`.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from bulkops.domain.model import OperationType
from bulkops.domain.people import Role
from bulkops.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

console = Console()
err = Console(stderr=True)


def run_db(settings: Settings, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `fn(session)` in one transaction on a short-lived engine."""
    from bulkops.store.db import make_engine, make_sessionmaker

    async def main() -> Any:
        engine = make_engine(settings, pool_size=2)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                return await fn(session)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def need_db(settings: Settings) -> None:
    if not settings.database_url:
        err.print("[red]BULKOPS_DATABASE_URL is not set.[/] (`bulkops dev` prints the URL of its database)")
        raise typer.Exit(2)


def add_key(
    tenant: Annotated[str, typer.Argument(help="tenant id")],
    role: Annotated[Role, typer.Option(help="viewer, operator, approver or admin")],
    user: Annotated[
        str | None, typer.Option("--user", help="email of the person whose personal key this is")
    ] = None,
    service: Annotated[
        str | None, typer.Option("--service", help="a service key with this name (it never approves)")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="a personal key's name in the audit trail (default: the role)")
    ] = None,
) -> None:
    """Add an API key to a tenant: a person's (--user EMAIL, at most their role) or a service key
    (--service NAME); prints it (shown only this once)."""
    from bulkops.service import auth, people
    from bulkops.service.errors import Conflict, Forbidden

    if (user is None) == (service is None):
        err.print("[red]say whose key it is: --user EMAIL (a person's) or --service NAME (a service key)[/]")
        raise typer.Exit(2)
    settings = Settings()
    need_db(settings)

    async def add_key_in(session: Any) -> str:
        await _need_tenant(session, tenant)
        if service is not None:
            return await auth.add_key(session, tenant, service, role, service=True)
        assert user is not None
        found = await people.user_by_email(session, tenant, user)
        if found is None:
            raise Conflict(f"tenant {tenant} has no user {user} (add one with `bulkops tenant add-user`)")
        return await people.add_personal_key(session, tenant, found.id, role, name)

    try:
        key = run_db(settings, add_key_in)
    except (Conflict, Forbidden) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(
        f"role:    {role.value}" + (f" (service key {service})" if service else f" (key of {user})")
    )
    console.print(f"API key: {key}", soft_wrap=True)
    console.print("[yellow]Store it now: it is not shown again.[/]")


def add_user(
    tenant: Annotated[str, typer.Argument(help="tenant id")],
    email: Annotated[str, typer.Argument(help="the person's email address (unique in the tenant)")],
    role: Annotated[Role, typer.Option(help="viewer, operator, approver or admin")],
    name: Annotated[
        str | None, typer.Option(help="shown in the audit trail (default: from the email)")
    ] = None,
) -> None:
    """Add a person to a tenant; prints their first personal API key (shown only this once)."""
    from bulkops.service import people
    from bulkops.service.errors import Conflict, Forbidden

    settings = Settings()
    need_db(settings)

    async def add_user_in(session: Any) -> str:
        await _need_tenant(session, tenant)
        row = await people.insert_user(session, tenant, email, name, role)
        return await people.add_personal_key(session, tenant, row.id, role, None)

    try:
        key = run_db(settings, add_user_in)
    except (Conflict, Forbidden, ValueError) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"user:    {email} ({role.value})")
    console.print(f"API key: {key}", soft_wrap=True)
    console.print("[yellow]Store it now: it is not shown again.[/]")


async def _need_tenant(session: Any, tenant: str) -> None:
    from sqlalchemy import select

    from bulkops.service.errors import Conflict
    from bulkops.store.tables import Tenant

    if await session.scalar(select(Tenant.id).where(Tenant.id == tenant)) is None:
        raise Conflict(f"no such tenant: {tenant}")


def policy(
    tenant: Annotated[str, typer.Argument(help="tenant id")],
    approve_type: Annotated[
        list[OperationType] | None,
        typer.Option("--approve-type", help="every operation of this type needs approval (repeat)"),
    ] = None,
    approve_over_orders: Annotated[
        int | None, typer.Option(min=0, help="operations over this many orders need approval")
    ] = None,
    approve_over_refund_cents: Annotated[
        int | None, typer.Option(min=0, help="refunds predicted over this many cents need approval")
    ] = None,
    approval_window: Annotated[
        int | None, typer.Option(min=1, help="seconds an operation waits for approval before it expires")
    ] = None,
    max_orders_per_second: Annotated[
        float | None, typer.Option(min=0, help="default pace of the tenant's operations (0: none)")
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="start from the defaults (no approval, no pace)")
    ] = False,
) -> None:
    """Show a tenant's approval and pace policy, or change the parts given; prints the result as JSON."""
    from sqlalchemy import select, update

    from bulkops.domain.approval import TenantPolicy
    from bulkops.store.tables import TENANTS

    settings = Settings()
    need_db(settings)
    changes: dict[str, Any] = {}
    if approve_type is not None:
        changes["approval_types"] = approve_type
    if approve_over_orders is not None:
        changes["approval_over_orders"] = approve_over_orders
    if approve_over_refund_cents is not None:
        changes["approval_over_refund_cents"] = approve_over_refund_cents
    if approval_window is not None:
        changes["approval_window_s"] = approval_window
    if max_orders_per_second is not None:
        changes["default_max_orders_per_second"] = max_orders_per_second or None

    async def change_policy_in(session: Any) -> TenantPolicy | None:
        row = (await session.execute(select(TENANTS.c.policy).where(TENANTS.c.id == tenant))).one_or_none()
        if row is None:
            return None
        current = TenantPolicy() if clear else TenantPolicy.model_validate(row.policy or {})
        new = TenantPolicy.model_validate({**current.model_dump(), **changes})
        if clear or changes:
            await session.execute(
                update(TENANTS).where(TENANTS.c.id == tenant).values(policy=new.model_dump(mode="json"))
            )
        return new

    result = run_db(settings, change_policy_in)
    if result is None:
        err.print(f"[red]no such tenant: {tenant}[/]")
        raise typer.Exit(1)
    console.print_json(json.dumps(result.model_dump(mode="json")))
