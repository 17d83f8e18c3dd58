"""The open event streams of each tenant (`bulk_streams`, this module its only writer): a slot is a
row, taken under the tenant's stream lock and given back when the stream's response ends, so the
cap holds across every API process. A row is a lease: it expires a margin after the longest a
stream may live, so the slot of a process that died mid-stream comes back on its own."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bulkops.store.tables import STREAMS

# A stream's own lifetime is BULKOPS_STREAM_MAX_S; its lease outlives it by this much (a response
# that is still sending its last event, a clock step) before the row stops counting.
LEASE_MARGIN = timedelta(seconds=60)


async def take_slot(session: AsyncSession, tenant_id: str, limit: int, lifetime_s: float) -> uuid.UUID | None:
    """A new slot's id, or None when the tenant already holds `limit` live ones. Serialised per
    tenant (a transaction-scoped advisory lock) so two processes cannot both take the last slot."""
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(f"bulk_streams:{tenant_id}", 0)))
    )
    await session.execute(
        delete(STREAMS).where(STREAMS.c.tenant_id == tenant_id, STREAMS.c.expires_at <= func.now())
    )
    held = (await session.execute(select(func.count()).where(STREAMS.c.tenant_id == tenant_id))).scalar_one()
    if held >= limit:
        return None
    slot = uuid.uuid4()
    expires_at = func.now() + timedelta(seconds=lifetime_s) + LEASE_MARGIN
    await session.execute(insert(STREAMS).values(id=slot, tenant_id=tenant_id, expires_at=expires_at))
    return slot


async def give_back(session: AsyncSession, slot: uuid.UUID) -> None:
    await session.execute(delete(STREAMS).where(STREAMS.c.id == slot))
