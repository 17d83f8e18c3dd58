"""API keys (the one writer of `api_keys`): generated once, stored only as a SHA-256 hash, compared
in constant time; each carries a role (`bulkops.domain.people.Role`) that bounds what it may do, and
belongs to one person (a personal key, never above its person's role) or is a service key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from cachetools import LRUCache
from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bulkops.domain.people import Actor, Role
from bulkops.store.tables import ApiKey, Tenant, User

KEY_PREFIX = "bko_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


SignInMethod = Literal["key", "oidc"]


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a tenant, a role (a personal key's at most its person's), the person
    (none for a service key) and the key or console session it came through."""

    tenant_id: str
    # No defaults: a principal built without its key's role would act above it.
    role: Role
    key_id: str | None
    key_prefix: str | None
    key_name: str | None
    user_id: str | None
    user_name: str | None
    user_email: str | None
    service: bool
    session_id: str | None = None
    method: SignInMethod = "key"

    @property
    def initiated_by(self) -> str:
        return (self.actor.label or "")[:200]

    @property
    def actor(self) -> Actor:
        return Actor(
            key_id=self.key_id,
            name=self.user_name if not self.service else self.key_name,
            user_id=self.user_id,
            key_name=self.key_name,
            session_id=self.session_id,
            service=self.service,
        )

    def may(self, required: Role) -> bool:
        return self.role.allows(required)


def _usable_keys() -> Select[ApiKey, User]:
    """Keys that authenticate, with their person (none for a service key): not revoked, and a
    service key or one whose person is enabled."""
    return (
        select(ApiKey, User)
        .outerjoin(User, User.id == ApiKey.user_id)
        .where(ApiKey.revoked_at.is_(None), or_(ApiKey.service, User.enabled))
    )


def _principal(key: ApiKey, user: User | None) -> Principal:
    role = Role(key.role)
    if not key.service:
        assert user is not None, "a personal key that authenticates has its enabled person"
        role = role.at_most(Role(user.role))
    return Principal(
        tenant_id=key.tenant_id,
        role=role,
        key_id=str(key.id),
        key_prefix=key.prefix,
        key_name=key.name,
        user_id=str(key.user_id) if key.user_id else None,
        user_name=user.name if user is not None else None,
        user_email=user.email if user is not None else None,
        service=key.service,
    )


async def authenticate(session: AsyncSession, key: str) -> Principal | None:
    digest = hash_key(key)
    found = (await session.execute(_usable_keys().where(ApiKey.key_hash == digest))).one_or_none()
    # The lookup is by hash (an index probe that reveals nothing about the key); compare anyway.
    if found is None or not hmac.compare_digest(found[0].key_hash, digest):
        return None
    return _principal(*found)


class KeyCache:
    """Principals by their key's hash, for `ttl_s` seconds: most requests then authenticate without a
    database round trip. A key revoked (or a user disabled or changed) through this process is
    forgotten at once; elsewhere (another API process, the CLI) it takes effect here within `ttl_s`
    (BULKOPS_AUTH_CACHE_S). Unknown keys are never cached: a key that fails costs its lookup every time."""

    def __init__(self, sessionmaker: async_sessionmaker, ttl_s: float, size: int = 10_000) -> None:
        self.sessionmaker = sessionmaker
        self.ttl_s = ttl_s
        # Each entry carries its own deadline, counted from before the lookup (a TTLCache would count
        # from the insert, after it): a key is never trusted longer than ttl_s past what the database said.
        self.entries: LRUCache[str, tuple[Principal, float]] = LRUCache(maxsize=size)

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
        self.entries[digest] = (found, now + self.ttl_s)
        return found

    def forget(self, key_id: str) -> None:
        for digest in [d for d, (p, _) in self.entries.items() if p.key_id == key_id]:
            del self.entries[digest]

    def forget_user(self, user_id: str) -> None:
        for digest in [d for d, (p, _) in self.entries.items() if p.user_id == user_id]:
            del self.entries[digest]


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


BOOTSTRAP_ADMIN_EMAIL = "admin@localhost"


async def create_tenant(session: AsyncSession, tenant_id: str) -> tuple[str, str]:
    """Create a tenant with its first person, user `admin` (BOOTSTRAP_ADMIN_EMAIL), and their admin
    API key; returns (api_key, webhook_secret), shown only this once."""
    secret = new_webhook_secret()
    session.add(Tenant(id=tenant_id, webhook_secret=secret))
    await session.flush()
    user = User(tenant_id=tenant_id, email=BOOTSTRAP_ADMIN_EMAIL, name="admin", role=Role.ADMIN.value)
    session.add(user)
    await session.flush()
    key = await add_key(session, tenant_id, "admin", Role.ADMIN, user_id=user.id)
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
    session: AsyncSession,
    tenant_id: str,
    name: str | None = None,
    role: Role = Role.OPERATOR,
    *,
    user_id: uuid.UUID | None = None,
    service: bool = False,
) -> str:
    """A new key of `user_id` (a personal key) or, with `service`, a service key; exactly one of the
    two (the table's check says so too). The caller checks the role against the person's."""
    if service == (user_id is not None):
        raise ValueError("a key belongs to one user, or is a service key")
    key = new_key()
    session.add(
        ApiKey(
            tenant_id=tenant_id,
            key_hash=hash_key(key),
            prefix=key[:10],
            name=name or role.value,
            role=role.value,
            user_id=user_id,
            service=service,
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


async def list_keys(session: AsyncSession, tenant_id: str) -> list[ApiKey]:
    """The tenant's keys, oldest first (revoked ones too: with when)."""
    return list(
        await session.scalars(
            select(ApiKey)
            .where(ApiKey.tenant_id == tenant_id)
            .order_by(ApiKey.created_at, ApiKey.id)
            .execution_options(populate_existing=True)
        )
    )


async def revoke_user_keys(session: AsyncSession, tenant_id: str, user_id: uuid.UUID) -> int:
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def revoke_tenant_key(session: AsyncSession, tenant_id: str, key_id: uuid.UUID) -> bool:
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
