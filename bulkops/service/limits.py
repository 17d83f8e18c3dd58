"""Per-tenant admission limits: what one tenant may pile onto the shared workers and database.

Checked in the transaction that inserts the operation's row, after locking the tenant's row, so two
requests racing for the last place cannot both get it. Each limit has a default in `Settings`;
answering 429 with `Retry-After` is the API's part (`LimitExceeded`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import Table, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bulkops.domain.approval import TenantPolicy
from bulkops.service.errors import Invalid
from bulkops.settings import Settings
from bulkops.store.gating import load_policy
from bulkops.store.operations import WAITING
from bulkops.store.tables import NOT_TERMINAL, OPERATIONS, TENANTS

# Accepted but not yet holding a running slot. Only waiting operations count here: their selection
# is snapshotted once they get their slot, so what they cost while they wait is their row alone.
# How soon to try again when the wait depends on other operations ending (not on a clock).
BUSY_RETRY_AFTER_S = 30
ONE_MINUTE = func.make_interval(0, 0, 0, 0, 0, 1)


class LimitExceeded(Exception):
    def __init__(
        self, detail: str, retry_after_s: int, *, permanent: bool = False, field: str = "max_concurrency"
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = max(1, retry_after_s)
        # Above the limit by itself: waiting cannot help (the API answers 422 on `field`, not 429).
        self.permanent = permanent
        self.field = field


@dataclass(frozen=True)
class TenantLimits:
    creates_per_minute: int
    max_waiting: int
    # The sum of `max_concurrency` over the tenant's operations that have not ended: the most
    # per-order activities its operations can ever have in flight at once.
    max_concurrency_total: int

    @classmethod
    def of(cls, settings: Settings, policy: TenantPolicy) -> TenantLimits:
        """The tenant's policy where it sets a limit, else the default from `Settings`; never above
        that default (a policy stored before the ceilings were checked is held to them too)."""
        caps = ceilings(settings)
        return cls(
            **{
                limit: min(getattr(policy, field) or caps[field], caps[field])
                for limit, field in _POLICY_FIELDS.items()
            }
        )


# Each limit and the policy field that may lower it.
_POLICY_FIELDS = {
    "creates_per_minute": "max_creates_per_minute",
    "max_waiting": "max_waiting_operations",
    "max_concurrency_total": "max_concurrency_total",
}


def ceilings(settings: Settings) -> dict[str, int]:
    """The deployment's caps, by policy field: a tenant's policy may lower them, never raise them."""
    return {
        "max_creates_per_minute": settings.tenant_creates_per_minute,
        "max_waiting_operations": settings.tenant_max_waiting,
        "max_concurrency_total": settings.tenant_max_concurrency,
    }


def check_ceilings(policy: TenantPolicy, settings: Settings) -> None:
    """`Invalid` (422) for a policy limit above the deployment's cap."""
    for field, cap in ceilings(settings).items():
        value = getattr(policy, field)
        if value is not None and value > cap:
            raise Invalid(field, f"{value} is above this deployment's ceiling of {cap}; it may only lower it")


async def _lock_tenant(session: AsyncSession, tenant_id: str) -> None:
    # FOR NO KEY UPDATE: creates of one tenant queue here, but rows that merely reference the tenant
    # (a refund's foreign key takes FOR KEY SHARE) are never held up by it.
    await session.execute(
        select(TENANTS.c.id).where(TENANTS.c.id == tenant_id).with_for_update(key_share=True)
    )


async def within_rate(
    session: AsyncSession, table: Table, tenant_id: str, per_minute: int, adding: int, what: str
) -> None:
    """Raise `LimitExceeded` (429, Retry-After: when the window's oldest row turns a minute old) unless
    the tenant may add `adding` rows of `table` (its `created_at` is the clock) within its per-minute
    budget. In the caller's transaction, under the tenant's lock, before the rows are inserted."""
    await _lock_tenant(session, tenant_id)
    in_window = and_(table.c.tenant_id == tenant_id, table.c.created_at > func.now() - ONE_MINUTE)
    recent, oldest_age = (
        await session.execute(
            select(func.count(), func.extract("epoch", func.min(table.c.created_at) - func.now())).where(
                in_window
            )
        )
    ).one()
    if recent + adding > per_minute:
        raise LimitExceeded(
            f"at most {per_minute} {what} may be created per minute ({recent} in the last minute)",
            math.ceil(60 + float(oldest_age or 0)),
            permanent=adding > per_minute,
            field=what,
        )


async def admit(session: AsyncSession, tenant_id: str, max_concurrency: int, settings: Settings) -> None:
    """Raise `LimitExceeded` unless the tenant may add an operation with this `max_concurrency` now."""
    await _lock_tenant(session, tenant_id)
    limits = TenantLimits.of(settings, await load_policy(session, tenant_id))
    if max_concurrency > limits.max_concurrency_total:
        raise LimitExceeded(
            f"max_concurrency may be at most {limits.max_concurrency_total} for this tenant",
            BUSY_RETRY_AFTER_S,
            permanent=True,
        )
    in_window = OPERATIONS.c.created_at > func.now() - ONE_MINUTE
    usage = (
        await session.execute(
            select(
                func.count().filter(in_window).label("recent"),
                func.extract("epoch", func.min(OPERATIONS.c.created_at).filter(in_window) - func.now()).label(
                    "oldest_age"
                ),
                func.count().filter(WAITING).label("waiting"),
                func.coalesce(func.sum(OPERATIONS.c.max_concurrency).filter(NOT_TERMINAL), 0).label(
                    "concurrency"
                ),
            ).where(OPERATIONS.c.tenant_id == tenant_id, and_(in_window | NOT_TERMINAL))
        )
    ).one()
    if usage.recent >= limits.creates_per_minute:
        # The window frees a place when its oldest creation turns one minute old.
        free_in = 60 + float(usage.oldest_age or 0)
        raise LimitExceeded(
            f"at most {limits.creates_per_minute} operations may be created per minute", math.ceil(free_in)
        )
    if usage.waiting >= limits.max_waiting:
        raise LimitExceeded(
            f"{usage.waiting} operations are already waiting to run (at most {limits.max_waiting})",
            BUSY_RETRY_AFTER_S,
        )
    if usage.concurrency + max_concurrency > limits.max_concurrency_total:
        raise LimitExceeded(
            f"the tenant's operations that have not ended may use max_concurrency "
            f"{limits.max_concurrency_total} in total; {usage.concurrency} is in use and "
            f"{max_concurrency} more was asked for",
            BUSY_RETRY_AFTER_S,
        )
