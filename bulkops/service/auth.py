"""API keys: generated once, stored only as a SHA-256 hash, compared in constant time; each carries
a role (`bulkops.domain.safety.Role`) that bounds what it may do."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bulkops.domain.safety import Actor, Role
from bulkops.infra.bounded import Bounded
from bulkops.store.tables import ApiKey, Tenant

KEY_PREFIX = "bko_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    key_id: str
    key_prefix: str
    # No defaults: a principal built without its key's role would act above it.
    role: Role
    key_name: str

    @property
    def initiated_by(self) -> str:
        return f"api-key:{self.key_prefix}"

    @property
    def actor(self) -> Actor:
        return Actor(key_id=self.key_id, name=self.key_name)

    def may(self, required: Role) -> bool:
        return self.role.allows(required)


_KEY_COLUMNS = (ApiKey.id, ApiKey.tenant_id, ApiKey.key_hash, ApiKey.prefix, ApiKey.role, ApiKey.name)


def _principal(row: Any) -> Principal:
    return Principal(
        tenant_id=row.tenant_id,
        key_id=str(row.id),
        key_prefix=row.prefix,
        role=Role(row.role),
        key_name=row.name,
    )


async def authenticate(session: AsyncSession, key: str) -> Principal | None:
    digest = hash_key(key)
    row = (
        await session.execute(
            select(*_KEY_COLUMNS).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
        )
    ).one_or_none()
    # The lookup is by hash (an index probe that reveals nothing about the key); compare anyway.
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    return _principal(row)


class KeyCache:
    """Principals by their key's hash, for `ttl_s` seconds: most requests then authenticate without a
    database round trip. A key revoked through this process is forgotten at once; one revoked
    elsewhere (another API process, the CLI) stops working here within `ttl_s` (BULKOPS_AUTH_CACHE_S).
    Unknown keys are never cached: a key that fails costs its lookup every time."""

    def __init__(self, sessionmaker: async_sessionmaker, ttl_s: float, size: int = 10_000) -> None:
        self.sessionmaker = sessionmaker
        self.ttl_s = ttl_s
        self.entries: Bounded[str, tuple[Principal, float]] = Bounded(size)

    async def principal(self, key: str) -> Principal | None:
        digest, now = hash_key(key), time.monotonic()
        hit = self.entries.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        async with self.sessionmaker() as session:
            found = await authenticate(session, key)
        if found is None or self.ttl_s <= 0:
            self.entries.pop(digest, None)
            return found
        self.entries.put(digest, (found, now + self.ttl_s))
        return found

    def forget(self, key_id: str) -> None:
        for digest in [d for d, (p, _) in self.entries.items() if p.key_id == key_id]:
            del self.entries[digest]


async def principal_for_key_id(session: AsyncSession, key_id: str) -> Principal | None:
    """The principal of a key the console's session names (by id, never by the key), with the key's
    role as it is now, while it is not revoked: revoking a key ends its console sessions at their
    next request, and a changed role applies at once."""
    try:
        kid = uuid.UUID(key_id)
    except ValueError:
        return None
    row = (
        await session.execute(select(*_KEY_COLUMNS).where(ApiKey.id == kid, ApiKey.revoked_at.is_(None)))
    ).one_or_none()
    return _principal(row) if row is not None else None


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


async def create_tenant(session: AsyncSession, tenant_id: str) -> tuple[str, str]:
    """Create a tenant with one admin API key; returns (api_key, webhook_secret), shown only this once."""
    secret = new_webhook_secret()
    session.add(Tenant(id=tenant_id, webhook_secret=secret))
    await session.flush()
    key = await add_key(session, tenant_id, "admin", Role.ADMIN)
    return key, secret


async def rotate_webhook_secret(session: AsyncSession, tenant_id: str, overlap: timedelta) -> str | None:
    """A new webhook secret; the current one keeps signing beside it for `overlap` (None: no tenant).

    One UPDATE, so two rotations at once serialise on the row and neither loses the secret in use.
    """
    secret = new_webhook_secret()
    result = await session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(
            webhook_secret_previous=Tenant.webhook_secret,
            webhook_secret_previous_until=func.now() + overlap,
            webhook_secret=secret,
        )
    )
    return secret if result.rowcount else None  # type: ignore[attr-defined]


async def add_key(
    session: AsyncSession, tenant_id: str, name: str | None = None, role: Role = Role.OPERATOR
) -> str:
    key = new_key()
    session.add(
        ApiKey(
            tenant_id=tenant_id,
            key_hash=hash_key(key),
            prefix=key[:10],
            name=name or role.value,
            role=role.value,
        )
    )
    await session.flush()
    return key


async def revoke_key(session: AsyncSession, tenant_id: str, key_or_prefix: str) -> int:
    """Revoke one of the tenant's keys, by the full key or by its printed prefix; returns how many
    keys were revoked. Another tenant's key with the same prefix is never touched."""
    cond = (
        ApiKey.key_hash == hash_key(key_or_prefix)
        if len(key_or_prefix) > 20
        else ApiKey.prefix == key_or_prefix
    )
    result = await session.execute(
        update(ApiKey)
        .where(cond, ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def list_keys(session: AsyncSession, tenant_id: str) -> list[Any]:
    return list(
        (
            await session.execute(
                select(
                    ApiKey.id,
                    ApiKey.name,
                    ApiKey.role,
                    ApiKey.prefix,
                    ApiKey.key_hash,
                    ApiKey.created_at,
                    ApiKey.revoked_at,
                )
                .where(ApiKey.tenant_id == tenant_id)
                .order_by(ApiKey.created_at, ApiKey.id)
            )
        ).all()
    )


async def revoke_tenant_key(session: AsyncSession, tenant_id: str, key_id: uuid.UUID) -> bool:
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
