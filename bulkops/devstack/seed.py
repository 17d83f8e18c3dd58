"""Demo and bulk order generation: one server-side INSERT … SELECT over generate_series.

Generating rows inside Postgres keeps `bulkops orders seed --count 100000` to a single statement
instead of shipping 100k rows of parameters over the wire.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bulkops.domain.model import OrderStatus
from bulkops.domain.people import Role
from bulkops.service.auth import BOOTSTRAP_ADMIN_EMAIL, add_key, authenticate, create_tenant
from bulkops.service.people import insert_user, user_by_email
from bulkops.store.tables import Tenant

log = logging.getLogger(__name__)

DEMO_TENANT = "demo"
DEMO_ORDERS = 1_000

# Out of every 20 orders: 12 PAID, 3 PENDING, 2 SHIPPED, 2 DELIVERED, 1 CANCELLED.
_MIXED_STATUS = """
    CASE
        WHEN g % 20 < 12 THEN 'PAID'
        WHEN g % 20 < 15 THEN 'PENDING'
        WHEN g % 20 < 17 THEN 'SHIPPED'
        WHEN g % 20 < 19 THEN 'DELIVERED'
        ELSE 'CANCELLED'
    END
"""

_INSERT = """
INSERT INTO orders (
    id, tenant_id, status, currency, total_cents, refunded_cents, paid_at, customer_email,
    shipping_method, note, tags, metadata, version, created_at, updated_at, cancelled_at, cancel_reason
)
SELECT
    gen_random_uuid(), :tenant, s.status, 'USD', s.total, 0,
    CASE WHEN s.status = 'PENDING' THEN NULL ELSE s.created_at + interval '5 minutes' END,
    'customer' || s.g || '@example.com',
    (ARRAY['standard', 'express', 'pickup'])[1 + s.g % 3],
    NULL,
    CASE
        WHEN s.g % 10 = 0 THEN ARRAY['vip']
        WHEN s.g % 10 = 3 THEN ARRAY['gift', 'fragile']
        WHEN s.g % 10 = 7 THEN ARRAY['wholesale']
        ELSE ARRAY[]::text[]
    END,
    jsonb_build_object('source', 'seed', 'n', s.g), 1, s.created_at, s.created_at,
    CASE WHEN s.status = 'CANCELLED' THEN s.created_at + interval '1 hour' END,
    CASE WHEN s.status = 'CANCELLED' THEN 'customer request' END
FROM (
    SELECT
        g,
        {status} AS status,
        -- $5.00 to about $400, skewed towards small baskets.
        (500 + floor(power(random(), 2) * 39500))::bigint AS total,
        now() - CAST(:span_seconds AS double precision) * (:count - g) / :count * interval '1 second'
            AS created_at
    FROM generate_series(1, :count) AS g
) AS s
"""


async def seed_orders(
    session: AsyncSession,
    tenant_id: str,
    count: int,
    *,
    status: OrderStatus | None = None,
    span_days: int = 30,
) -> int:
    """Insert `count` orders for a tenant, spread over the last `span_days`; returns the row count.

    Without `status` the statuses are mixed (mostly PAID); tags and totals always vary.
    """
    if count <= 0:
        return 0
    status_sql = "CAST(:status AS varchar)" if status is not None else _MIXED_STATUS
    params: dict[str, object] = {"tenant": tenant_id, "count": count, "span_seconds": span_days * 86_400}
    if status is not None:
        params["status"] = status.value
    result = await session.execute(text(_INSERT.format(status=status_sql)), params)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class DemoTenant:
    api_key: str  # the stored key when it still works, else a newly issued one
    new_key: bool
    created: bool


async def ensure_demo_tenant(sessionmaker: async_sessionmaker, stored_key: str | None) -> DemoTenant:
    """Create tenant `demo` with a key and demo orders once; later calls leave its data alone.

    When the stored key no longer authenticates (file lost, key revoked, database replaced), the
    existing tenant gets a fresh key instead of a second batch of orders.
    """
    async with sessionmaker() as session, session.begin():
        exists = await session.scalar(select(Tenant.id).where(Tenant.id == DEMO_TENANT))
        if exists is None:
            key, _secret = await create_tenant(session, DEMO_TENANT)
            n = await seed_orders(session, DEMO_TENANT, DEMO_ORDERS)
            log.info("created tenant %s with %d demo orders", DEMO_TENANT, n)
            return DemoTenant(api_key=key, new_key=True, created=True)
        if stored_key:
            principal = await authenticate(session, stored_key)
            if principal is not None and principal.tenant_id == DEMO_TENANT:
                return DemoTenant(api_key=stored_key, new_key=False, created=False)
        admin = await user_by_email(session, DEMO_TENANT, BOOTSTRAP_ADMIN_EMAIL)
        if admin is None or not admin.enabled:
            admin = await insert_user(
                session, DEMO_TENANT, f"dev-{uuid.uuid4().hex[:8]}@localhost", "dev", Role.ADMIN
            )
        key = await add_key(session, DEMO_TENANT, name="dev", role=Role.ADMIN, user_id=admin.id)
        return DemoTenant(api_key=key, new_key=True, created=False)
