"""Migration 0004 on a database that already has keys: they become `operator` keys (what every key
could do before roles), and the migration goes down and up again cleanly."""

from __future__ import annotations

import asyncio
import uuid

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bulkops.store.db import async_url
from bulkops.store.migrate import alembic_config, upgrade
from tests.harness import Stack


async def test_existing_keys_migrate_as_operators(stack: Stack) -> None:
    name = f"mig_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(async_url(stack.database_url), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(stack.database_url).set(database=name).render_as_string(hide_password=False)
    db = create_async_engine(async_url(url))
    try:
        await asyncio.to_thread(upgrade, url, "0003")
        async with db.begin() as conn:
            await conn.execute(text("INSERT INTO tenants (id, webhook_secret) VALUES ('old', 'whsec_x')"))
            await conn.execute(
                text(
                    "INSERT INTO api_keys (id, tenant_id, key_hash, prefix, name) "
                    "VALUES (:id, 'old', :hash, 'bko_old', 'legacy')"
                ),
                {"id": uuid.uuid4(), "hash": "0" * 64},
            )
        await asyncio.to_thread(upgrade, url, "head")
        async with db.connect() as conn:
            assert (await conn.execute(text("SELECT role FROM api_keys"))).scalars().all() == ["operator"]
            assert await conn.scalar(text("SELECT count(*) FROM bulk_operation_events")) == 0
            # 0008: the key became a person of its own, with its name and role.
            person = (
                await conn.execute(
                    text(
                        "SELECT u.name, u.role, u.enabled, k.service FROM api_keys k JOIN users u ON u.id = k.user_id"
                    )
                )
            ).all()
            assert [tuple(r) for r in person] == [("legacy", "operator", True, False)]
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0003")
        await asyncio.to_thread(upgrade, url, "head")
        async with db.connect() as conn:
            assert (await conn.execute(text("SELECT role FROM api_keys"))).scalars().all() == ["operator"]
    finally:
        await db.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()
