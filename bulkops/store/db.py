"""Engine and session factory (psycopg 3 async; one engine per process, built from Settings), and
the plain psycopg pool of the per-order hot path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from bulkops.settings import Settings


def async_url(url: str) -> str:
    """Accept `postgresql://` too, but always drive psycopg 3."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    return create_async_engine(
        async_url(settings.require_database_url()),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=10,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def conninfo(url: str) -> str:
    """The libpq form of the database URL (psycopg itself takes no SQLAlchemy driver suffix)."""
    return "postgresql://" + async_url(url)[len("postgresql+psycopg://") :]


def make_order_pool(
    settings: Settings,
    *,
    size: int | None = None,
    configure: Callable[[Any], Awaitable[None]] | None = None,
) -> AsyncConnectionPool:
    """The per-order activity's pool, opened by its owner (`async with pool`).

    No check on checkout: a ping is one more round trip on every order (a third of the per-order
    cost). A connection a database restart broke fails its attempt instead, Temporal retries it,
    and the pool replaces the connection when it comes back broken.
    """
    size = size or settings.db_pool_size
    return AsyncConnectionPool(
        conninfo(settings.require_database_url()),
        min_size=min(4, size),
        max_size=size,
        open=False,
        name="orders",
        configure=configure,  # each new connection (tracing instruments it)
    )
