"""The one writer (and reader) of `bulk_operation_events`, the audit trail.

Each event carries a key unique within its operation (`created`, `ended`, `paused:<update id>` …):
an insert that finds its key taken does nothing, so a retried activity or a replayed workflow writes
every event exactly once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bulkops.domain.audit import AuditAction, AuditEventRead
from bulkops.domain.people import Actor
from bulkops.store.tables import EVENTS


async def insert_event(
    session: AsyncSession,
    operation_id: uuid.UUID,
    key: str,
    action: AuditAction,
    actor: Actor | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> bool:
    """Record one event (in the caller's transaction); False when its key was recorded before."""
    actor = actor or Actor()
    detail = dict(detail or {})
    if actor.comment:
        detail["comment"] = actor.comment
    result = await session.execute(
        pg_insert(EVENTS)
        .values(
            operation_id=operation_id,
            event_key=key,
            action=action.value,
            actor_key_id=uuid.UUID(actor.key_id) if actor.key_id else None,
            actor_name=actor.name,
            actor_user_id=uuid.UUID(actor.user_id) if actor.user_id else None,
            actor_key_name=actor.key_name,
            actor_session_id=uuid.UUID(actor.session_id) if actor.session_id else None,
            detail=detail,
            **({"at": at} if at is not None else {}),
        )
        .on_conflict_do_nothing(index_elements=["operation_id", "event_key"])
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def list_events(session: AsyncSession, operation_id: uuid.UUID) -> list[AuditEventRead]:
    rows = (
        await session.execute(
            select(EVENTS).where(EVENTS.c.operation_id == operation_id).order_by(EVENTS.c.at, EVENTS.c.id)
        )
    ).all()
    return [
        AuditEventRead(
            id=r.id,
            operation_id=r.operation_id,
            action=AuditAction(r.action),
            actor_key_id=str(r.actor_key_id) if r.actor_key_id else None,
            actor_name=r.actor_name,
            actor_user_id=str(r.actor_user_id) if r.actor_user_id else None,
            actor_key_name=r.actor_key_name,
            actor_session_id=str(r.actor_session_id) if r.actor_session_id else None,
            at=r.at,
            detail=r.detail or {},
        )
        for r in rows
    ]
