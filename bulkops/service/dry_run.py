"""A dry run: what an operation would match and which orders would fail, by code, without starting it.

The type's rules run as one SQL `CASE` (`bulkops.domain.rules.rule_sql`), so any selection is sized in
one grouped query (`bulkops.store.gating.forecast`); nothing is written and no workflow starts.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from bulkops.domain.requests import BulkOperationCreate
from bulkops.domain.views import DryRunRead
from bulkops.store.gating import forecast
from bulkops.store.selection import filter_clause
from bulkops.store.tables import ORDERS


async def dry_run(session: AsyncSession, tenant_id: str, body: BulkOperationCreate) -> DryRunRead:
    """In the caller's session: nothing is written."""
    where: ColumnElement[bool]
    listed: int | None
    if body.order_ids is not None:
        where, listed = ORDERS.c.id.in_(body.order_ids), len(body.order_ids)
    else:
        assert body.filter is not None
        where, listed = filter_clause(tenant_id, body.filter), None
    return await forecast(session, tenant_id, body.operation_type, body.parameters, where, listed)
