"""A dry run: what an operation would match and which orders would fail, by code, without starting it.

The type's rules run as one SQL `CASE` (`bulkops.rules.rule_sql`), so any selection is sized in one
grouped query; nothing is written and no workflow starts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal, literal_column, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from bulkops.domain.model import OperationType
from bulkops.domain.representation import DryRunRead
from bulkops.domain.requests import BulkOperationCreate
from bulkops.domain.rules import rule_sql
from bulkops.store.selection import filter_clause
from bulkops.store.tables import ORDERS


async def dry_run(sessionmaker: async_sessionmaker, tenant_id: str, body: BulkOperationCreate) -> DryRunRead:
    code = rule_sql(body.operation_type, body.parameters, ORDERS).label("code")
    # What each order would be refunded (summed over the orders that would succeed).
    amount = body.parameters.get("amount_cents")
    refund: Any = literal(0)
    if body.operation_type is OperationType.BULK_REFUND:
        refund = literal(amount) if amount else ORDERS.c.total_cents - ORDERS.c.refunded_cents
    if body.order_ids is not None:
        where = [ORDERS.c.tenant_id == tenant_id, ORDERS.c.id.in_(body.order_ids)]
    else:
        assert body.filter is not None
        where = [filter_clause(tenant_id, body.filter)]
    async with sessionmaker() as session:
        groups = (
            await session.execute(
                select(code, func.count(), func.coalesce(func.sum(refund), 0))
                .where(*where)
                .group_by(literal_column("code"))
            )
        ).all()
        sample_rows = (
            await session.execute(
                select(ORDERS.c.id, ORDERS.c.status, ORDERS.c.total_cents, ORDERS.c.refunded_cents, code)
                .where(*where)
                .order_by(ORDERS.c.created_at, ORDERS.c.id)
                .limit(10)
            )
        ).all()
    by_code = {c: n for c, n, _ in groups if c is not None}
    found = sum(n for _, n, _ in groups)
    matched = len(body.order_ids) if body.order_ids is not None else found
    if body.order_ids is not None and matched > found:
        by_code["ORDER_NOT_FOUND"] = matched - found
    return DryRunRead(
        operation_type=body.operation_type,
        matched_count=matched,
        would_fail_count=sum(by_code.values()),
        would_fail_by_code=by_code,
        predicted_refund_cents=sum(int(cents) for c, _, cents in groups if c is None),
        sample=[
            {
                "order_id": str(r.id),
                "status": r.status,
                "total_cents": r.total_cents,
                "refunded_cents": r.refunded_cents,
                "would_fail": r.code,
            }
            for r in sample_rows
        ],
    )
