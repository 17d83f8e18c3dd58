"""A tenant's people (the one writer of `users`) and their keys: personal keys act as their person,
never above the person's role; service keys act as no one and may never approve or reject. Sign-in
to the console, with a key or from the identity provider, opens a session (`SessionService`).

Disabling a person revokes their keys and ends their sessions in one transaction; this process
forgets them at once (`KeyCache`), other API processes within BULKOPS_AUTH_CACHE_S.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bulkops.domain.people import Role, checked_email
from bulkops.service import auth
from bulkops.service.auth import KeyCache, Principal
from bulkops.service.errors import Conflict, Forbidden, NotFound
from bulkops.service.limits import within_rate
from bulkops.service.sessions import USER_DISABLED, SessionService, end_user_sessions
from bulkops.settings import Settings
from bulkops.store.tables import API_KEYS, ApiKey, User


async def insert_user(
    session: AsyncSession,
    tenant_id: str,
    email: str,
    name: str | None,
    role: Role,
    *,
    issuer: str | None = None,
    subject: str | None = None,
) -> User:
    """A new user (in the caller's transaction); `Conflict` when the tenant has that email already."""
    email = checked_email(email)
    taken = await session.scalar(
        select(User.id).where(User.tenant_id == tenant_id, func.lower(User.email) == email.lower())
    )
    if taken is not None:
        raise Conflict(f"the tenant already has a user with email {email}")
    user = User(
        tenant_id=tenant_id,
        email=email,
        name=(name or email.split("@")[0])[:200],
        role=role.value,
        issuer=issuer,
        subject=subject,
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # the same email, added at the same moment
        raise Conflict(f"the tenant already has a user with email {email}") from None
    return await _user_row(session, tenant_id, user.id)


def _users_of(tenant_id: str) -> Select[User]:
    # Read fresh, never from the session's identity map: an update in the same transaction shows.
    return select(User).where(User.tenant_id == tenant_id).execution_options(populate_existing=True)


async def user_by_email(session: AsyncSession, tenant_id: str, email: str) -> User | None:
    return await session.scalar(_users_of(tenant_id).where(func.lower(User.email) == email.lower()))


async def _user_row(session: AsyncSession, tenant_id: str, user_id: uuid.UUID) -> User:
    user = await session.scalar(_users_of(tenant_id).where(User.id == user_id))
    if user is None:
        raise NotFound("user")
    return user


async def disable_user(session: AsyncSession, tenant_id: str, user_id: uuid.UUID) -> None:
    """Disable a user, revoke their keys and end their sessions, in the caller's transaction."""
    await session.execute(
        update(User)
        .where(User.id == user_id, User.tenant_id == tenant_id)
        .values(enabled=False, updated_at=func.now())
    )
    await auth.revoke_user_keys(session, tenant_id, user_id)
    await end_user_sessions(session, user_id, USER_DISABLED)


async def add_personal_key(
    session: AsyncSession, tenant_id: str, user_id: uuid.UUID, role: Role, name: str | None
) -> str:
    """A new key of an enabled user, with at most their role."""
    user = await _user_row(session, tenant_id, user_id)
    if not user.enabled:
        raise Conflict("this user is disabled; enable them before giving them a key")
    if not Role(user.role).allows(role):
        raise Forbidden(
            f"a personal key's role is at most its person's ({user.role}); asked for {role.value}"
        )
    return await auth.add_key(session, tenant_id, name, role, user_id=user_id)


class PeopleService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker,
        key_cache: KeyCache,
        sessions: SessionService,
        settings: Settings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.key_cache = key_cache
        self.sessions = sessions
        self.settings = settings

    # --- users --------------------------------------------------------------------------------------

    async def users(self, tenant_id: str) -> list[User]:
        async with self.sessionmaker() as session:
            return list(await session.scalars(_users_of(tenant_id).order_by(User.created_at, User.id)))

    async def add_user(self, tenant_id: str, email: str, name: str | None, role: Role) -> User:
        async with self.sessionmaker() as session, session.begin():
            return await insert_user(session, tenant_id, email, name, role)

    async def update_user(
        self,
        caller: Principal,
        user_id: uuid.UUID,
        *,
        role: Role | None = None,
        enabled: bool | None = None,
        name: str | None = None,
    ) -> User:
        """Change a user's role, name or enabled flag. Disabling revokes their keys and ends their
        sessions at once; a lower role bounds their keys and sessions from the next request."""
        tenant_id = caller.tenant_id
        if str(user_id) == caller.user_id and (enabled is False or (role and role is not Role.ADMIN)):
            raise Conflict("you cannot disable or demote yourself; ask another admin")
        async with self.sessionmaker() as session, session.begin():
            await _user_row(session, tenant_id, user_id)
            values: dict[str, Any] = {}
            if role is not None:
                values["role"] = role.value
            if name is not None:
                values["name"] = name
            if enabled is True:
                values["enabled"] = True
            if values:
                await session.execute(
                    update(User)
                    .where(User.id == user_id, User.tenant_id == tenant_id)
                    .values(**values, updated_at=func.now())
                )
            if enabled is False:
                await disable_user(session, tenant_id, user_id)
            row = await _user_row(session, tenant_id, user_id)
        self.key_cache.forget_user(str(user_id))
        return row

    # --- keys ---------------------------------------------------------------------------------------

    async def keys(self, tenant_id: str) -> list[ApiKey]:
        async with self.sessionmaker() as session:
            return await auth.list_keys(session, tenant_id)

    async def add_key(
        self,
        caller: Principal,
        role: Role,
        name: str | None,
        user_id: uuid.UUID | None = None,
        service: bool = False,
    ) -> tuple[str, ApiKey]:
        """A new key (shown only now) and its row: the caller's own person's unless `service` or
        `user_id` says otherwise (those two need an admin caller)."""
        tenant_id = caller.tenant_id
        if service and user_id is not None:
            raise Conflict("a key is a service key or a user's personal key, not both")
        if (service or (user_id is not None and str(user_id) != caller.user_id)) and not caller.may(
            Role.ADMIN
        ):
            raise Forbidden("only an admin may create service keys or keys of other people")
        if not service and user_id is None:
            if caller.user_id is None:
                raise Conflict(
                    'a service key has no person to give a key to: send "service": true or a user_id'
                )
            user_id = uuid.UUID(caller.user_id)
        if not caller.may(role):
            raise Forbidden(
                f"a key's role is at most the caller's ({caller.role.value}); asked for {role.value}"
            )
        async with self.sessionmaker() as session, session.begin():
            per_minute = self.settings.tenant_keys_per_minute
            await within_rate(session, API_KEYS, tenant_id, per_minute, 1, "keys")
            if service:
                key = await auth.add_key(session, tenant_id, name, role, service=True)
            else:
                assert user_id is not None
                key = await add_personal_key(session, tenant_id, user_id, role, name)
            rows = await auth.list_keys(session, tenant_id)
        return key, next(r for r in rows if r.key_hash == auth.hash_key(key))

    async def revoke_key(self, tenant_id: str, key_id: uuid.UUID) -> bool:
        async with self.sessionmaker() as session, session.begin():
            revoked = await auth.revoke_tenant_key(session, tenant_id, key_id)
        if revoked:
            self.key_cache.forget(str(key_id))  # at once in this process; elsewhere within the cache's bound
        return revoked

    # --- console sign-in ----------------------------------------------------------------------------

    async def sign_in_with_key(self, principal: Principal) -> uuid.UUID:
        """A console session for a personal key's person, through that key (its revocation ends it)."""
        if principal.service or principal.user_id is None or principal.key_id is None:
            raise Forbidden("a service key cannot sign in to the console; use a personal key")
        return await self.sessions.open(principal.tenant_id, principal.user_id, "key", principal.key_id)

    async def sign_in_from_idp(
        self, tenant_id: str, issuer: str, subject: str, email: str, name: str | None, role: Role
    ) -> uuid.UUID:
        """A console session for the person the identity provider vouched for (a verified ID token:
        `iss`, `sub`, email and name claims, and the role its groups map to); returns its id.

        The user is found by (issuer, subject), else by email (and then bound to that subject); one
        unknown to the tenant is created with `role`. A known user's role and name follow the
        provider's at every sign-in. A disabled user, or an email bound to another subject, is
        `Forbidden`, and so is a token without a usable email address."""
        try:
            email = checked_email(email)
        except ValueError:
            raise Forbidden("the identity provider sent no usable email address for this person") from None
        async with self.sessionmaker() as session, session.begin():
            user = await session.scalar(
                _users_of(tenant_id).where(User.issuer == issuer, User.subject == subject)
            )
            if user is None:
                user = await user_by_email(session, tenant_id, email)
                if user is not None and user.subject is not None:
                    raise Forbidden(f"{email} belongs to another identity at the provider; ask an admin")
            if user is None:
                user = await insert_user(
                    session, tenant_id, email, name, role, issuer=issuer, subject=subject
                )
            elif not user.enabled:
                raise Forbidden(f"the user {user.email} is disabled; ask an admin")
            else:
                await session.execute(
                    update(User)
                    .where(User.id == user.id)
                    .values(
                        issuer=issuer,
                        subject=subject,
                        name=(name or user.name)[:200],
                        role=role.value,
                        updated_at=func.now(),
                    )
                )
            user_id = user.id
        self.key_cache.forget_user(str(user_id))  # a new role applies to their keys at once
        return await self.sessions.open(tenant_id, user_id, "oidc")

    async def sign_out_everywhere(self, tenant_id: str, user_id: uuid.UUID) -> int:
        """End every console session of one of the tenant's users; returns how many."""
        async with self.sessionmaker() as session:
            await _user_row(session, tenant_id, user_id)
        return await self.sessions.end_all_for_user(user_id)
