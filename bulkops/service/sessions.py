"""Console sessions on the server (the one writer of `console_sessions`): a row per sign-in, which
the console's signed cookie only names. A session acts as its person while the row is open, its
absolute and idle limits have not passed, the person is enabled and — for a key sign-in — the key is
not revoked; anything else ends it at the next request, wherever its cookie was copied to.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bulkops.domain.people import Role
from bulkops.service.auth import Principal, SignInMethod
from bulkops.settings import Settings
from bulkops.store.tables import ApiKey, ConsoleSessionRow, User

S = ConsoleSessionRow
# Why a session ended (`ended_reason`).
SIGNED_OUT = "signed out"
SIGNED_OUT_EVERYWHERE = "signed out everywhere"
USER_DISABLED = "user disabled"


async def end_user_sessions(session: AsyncSession, user_id: uuid.UUID, reason: str) -> int:
    """End every open session of a user, in the caller's transaction; returns how many."""
    result = await session.execute(
        update(S)
        .where(S.user_id == user_id, S.ended_at.is_(None))
        .values(ended_at=func.now(), ended_reason=reason)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


class SessionService:
    def __init__(self, sessionmaker: async_sessionmaker, settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.absolute = timedelta(hours=settings.console_session_hours)
        self.idle = timedelta(minutes=settings.console_session_idle_minutes)
        # `last_seen_at` is written at most this often per session (a read is mostly just a read).
        self.touch_every = min(timedelta(minutes=1), self.idle / 10)

    async def open(
        self,
        tenant_id: str,
        user_id: uuid.UUID | str,
        method: SignInMethod,
        key_id: uuid.UUID | str | None = None,
    ) -> uuid.UUID:
        """A new session of `user_id`, signed in by `method` ('key': through `key_id`; 'oidc': through
        the identity provider); returns its id, for the cookie."""
        if (method == "key") != (key_id is not None):
            raise ValueError("a key sign-in names its key, and only a key sign-in does")
        async with self.sessionmaker() as session, session.begin():
            row = ConsoleSessionRow(
                tenant_id=tenant_id,
                user_id=uuid.UUID(str(user_id)),
                key_id=uuid.UUID(str(key_id)) if key_id is not None else None,
                method=method,
                expires_at=datetime.now(UTC) + self.absolute,
            )
            session.add(row)
            await session.flush()
            return row.id

    async def end(self, session_id: uuid.UUID | str, reason: str = SIGNED_OUT) -> bool:
        """End one session (sign-out); False when it had ended already or does not exist."""
        sid = _uuid(session_id)
        if sid is None:
            return False
        async with self.sessionmaker() as session, session.begin():
            result = await session.execute(
                update(S)
                .where(S.id == sid, S.ended_at.is_(None))
                .values(ended_at=func.now(), ended_reason=reason)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def end_all_for_user(self, user_id: uuid.UUID | str, reason: str = SIGNED_OUT_EVERYWHERE) -> int:
        """Sign a person out everywhere: every open session of theirs ends; returns how many."""
        async with self.sessionmaker() as session, session.begin():
            return await end_user_sessions(session, uuid.UUID(str(user_id)), reason)

    async def resolve(self, session_id: uuid.UUID | str) -> Principal | None:
        """The principal a session acts as now, or None when it has ended, passed its absolute or idle
        limit, its person is disabled or its key revoked. The role is the person's as it is now
        (bounded by the key's, for a key sign-in)."""
        sid = _uuid(session_id)
        if sid is None:
            return None
        now = datetime.now(UTC)
        async with self.sessionmaker() as session:
            row = (
                await session.execute(
                    select(
                        S.tenant_id,
                        S.user_id,
                        S.key_id,
                        S.method,
                        S.last_seen_at,
                        User.name.label("user_name"),
                        User.email.label("user_email"),
                        User.role.label("user_role"),
                        ApiKey.role.label("key_role"),
                        ApiKey.name.label("key_name"),
                        ApiKey.prefix.label("key_prefix"),
                    )
                    .join(User, User.id == S.user_id)
                    .outerjoin(ApiKey, ApiKey.id == S.key_id)
                    .where(
                        S.id == sid,
                        S.ended_at.is_(None),
                        S.expires_at > now,
                        S.last_seen_at > now - self.idle,
                        User.enabled,
                        (S.key_id.is_(None)) | (ApiKey.revoked_at.is_(None)),
                    )
                )
            ).one_or_none()
            if row is None:
                return None
            if row.last_seen_at < now - self.touch_every:
                await session.execute(update(S).where(S.id == sid).values(last_seen_at=now))
                await session.commit()
        role = Role(row.user_role)
        if row.key_role is not None:
            role = Role(row.key_role).at_most(role)
        return Principal(
            tenant_id=row.tenant_id,
            role=role,
            key_id=str(row.key_id) if row.key_id else None,
            key_prefix=row.key_prefix,
            key_name=row.key_name,
            user_id=str(row.user_id),
            user_name=row.user_name,
            user_email=row.user_email,
            service=False,
            session_id=str(sid),
            method=row.method,
        )


def _uuid(value: uuid.UUID | str) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
