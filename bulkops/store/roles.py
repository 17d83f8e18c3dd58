"""The application's own database role: least privilege, created (or updated) by the migration step.

Migrations run as the database's owner; the API and the workers connect as this role, which may
read and write rows of bulkops' tables and nothing else: no DDL, no superuser, no role or database
creation, and no connection to the cluster's other databases (Temporal's, in the compose stack).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from bulkops.store.db import async_url

ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT"


async def _quote(conn: AsyncConnection, value: str, kind: str) -> str:
    # DDL takes no bind parameters: let the server quote (quote_ident / quote_literal).
    return str(await conn.scalar(text(f"SELECT {kind}(:v)"), {"v": value}))


async def ensure_app_role(database_url: str, role: str, password: str, deny_databases: Iterable[str]) -> None:
    """Create or update `role` with `password` and exactly the rights the application needs."""
    if not password:
        raise ValueError("the application's database role needs a password (BULKOPS_APP_DB_PASSWORD)")
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.begin() as conn:
            who = await _quote(conn, role, "quote_ident")
            secret = await _quote(conn, password, "quote_literal")
            db = await _quote(conn, str(await conn.scalar(text("SELECT current_database()"))), "quote_ident")
            exists = await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
            await conn.execute(
                text(f"{'ALTER' if exists else 'CREATE'} ROLE {who} {ATTRIBUTES} PASSWORD {secret}")
            )
            await conn.execute(text(f"GRANT CONNECT ON DATABASE {db} TO {who}"))
            await conn.execute(text(f"REVOKE CREATE, TEMPORARY ON DATABASE {db} FROM PUBLIC, {who}"))
            await conn.execute(text(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {who}"))
            await conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {who}"))
            await conn.execute(
                text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {who}")
            )
            await conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {who}"))
            # The migrations' own bookkeeping is the owner's alone.
            await conn.execute(text(f"REVOKE ALL ON TABLE alembic_version FROM {who}"))
            existing = set(await conn.scalars(text("SELECT datname FROM pg_database")))
            for name in deny_databases:
                if name in existing:
                    other = await _quote(conn, name, "quote_ident")
                    # CONNECT is granted to PUBLIC on every new database: take it back there.
                    await conn.execute(text(f"REVOKE ALL ON DATABASE {other} FROM PUBLIC, {who}"))
    finally:
        await engine.dispose()
