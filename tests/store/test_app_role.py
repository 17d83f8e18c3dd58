"""The application's database role reads and writes bulkops' rows and can do nothing else: no DDL,
no superuser rights, no migrations' bookkeeping, no connection to Temporal's databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bulkops.store.db import async_url
from bulkops.store.roles import ensure_app_role
from tests.harness import Stack

PASSWORD = "app-" + uuid.uuid4().hex


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(async_url(stack.database_url), isolation_level="AUTOCOMMIT")
    yield engine
    await engine.dispose()


async def test_the_application_role_has_rows_and_nothing_else(stack: Stack, admin: AsyncEngine) -> None:
    suffix = uuid.uuid4().hex[:8]
    role, temporal_db = f"bulkops_app_{suffix}", f"temporal_{suffix}"
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{temporal_db}"'))
    as_app = make_url(async_url(stack.database_url)).set(username=role, password=PASSWORD)
    app = create_async_engine(as_app)
    try:
        await ensure_app_role(stack.database_url, role, "first-password", [temporal_db, "no_such_db"])
        await ensure_app_role(stack.database_url, role, PASSWORD, [temporal_db])  # again: idempotent
        async with app.connect() as conn:
            rights = (
                await conn.execute(
                    text(
                        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles "
                        "WHERE rolname = current_user"
                    )
                )
            ).one()
            assert tuple(rights) == (False, False, False, False)
            await conn.scalar(text("SELECT count(*) FROM orders"))
            await conn.execute(
                text("INSERT INTO tenants (id, webhook_secret) VALUES (:t, 'whsec_x')"),
                {"t": f"role-{suffix}"},
            )
            await conn.execute(text("DELETE FROM tenants WHERE id = :t"), {"t": f"role-{suffix}"})
            await conn.rollback()
            for forbidden in (
                "CREATE TABLE sneaky (i int)",
                "DROP TABLE orders",
                "ALTER TABLE orders ADD x int",
                "SELECT * FROM alembic_version",
                "TRUNCATE orders",
                "CREATE ROLE sneaky",
            ):
                with pytest.raises(DBAPIError, match=r"permission denied|must be owner"):
                    await conn.execute(text(forbidden))
                await conn.rollback()
        elsewhere = create_async_engine(as_app.set(database=temporal_db))
        try:
            with pytest.raises(DBAPIError, match="permission denied for database"):
                async with elsewhere.connect():
                    pass
        finally:
            await elsewhere.dispose()
    finally:
        await app.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{temporal_db}"'))
            await conn.execute(text(f'DROP OWNED BY "{role}"'))
            await conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))


async def test_no_role_without_a_password(stack: Stack) -> None:
    with pytest.raises(ValueError, match="needs a password"):
        await ensure_app_role(stack.database_url, "bulkops_app_nopw", "", [])
