"""The rules are stated once (bulkops.domain.rules.CHECKS); here their two readings must agree: for
generated orders and every type and parameter variant, the SQL CASE a dry run counts with reaches
the same code as the Python decision the per-order activity takes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from bulkops.domain.model import OperationType, OrderStatus
from bulkops.domain.rules import decide, rule_sql
from bulkops.store.tables import ORDERS
from tests.harness import Harness

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def orders(draw: st.DrawFn) -> dict[str, Any]:
    # The edges the rules turn on: nothing paid, all refunded, amounts equal to what is left.
    total = draw(st.sampled_from([0, 1, 2_500, 6_000]) | st.integers(0, 7_000))
    return {
        "status": draw(st.sampled_from(list(OrderStatus))).value,
        "paid_at": draw(st.none() | st.just(NOW)),
        "total_cents": total,
        "refunded_cents": draw(st.sampled_from([0, total, max(total - 2_500, 0)]) | st.integers(0, total)),
        "tags": draw(st.lists(st.sampled_from(["vip", "gift"]), max_size=2)),
        "metadata": {},
        "version": draw(st.integers(1, 5)),
    }


VARIANTS = st.sampled_from(
    [
        (OperationType.BULK_CANCEL, {"reason": "r"}),
        (OperationType.BULK_REFUND, {"reason": "r"}),
        (OperationType.BULK_REFUND, {"amount_cents": 1}),
        (OperationType.BULK_REFUND, {"amount_cents": 2_500}),
        (OperationType.BULK_REFUND, {"amount_cents": 6_000}),
        (OperationType.BULK_UPDATE, {"set": {"note": "n"}}),
        (OperationType.BULK_UPDATE, {"add_tags": ["x"], "metadata": {"a": 1}}),
        (OperationType.BULK_EXPORT, {"format": "csv"}),
    ]
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(orders(), min_size=1, max_size=25), variant=VARIANTS)
async def test_sql_and_python_forms_reach_the_same_code(
    harness: Harness, batch: list[dict[str, Any]], variant: tuple[OperationType, dict[str, Any]]
) -> None:
    op, params = variant
    tenant = await harness.tenant("rules")
    rows = [
        {
            **o,
            "id": uuid.uuid4(),
            "tenant_id": tenant.id,
            "currency": "USD",
            "created_at": NOW,
            "updated_at": NOW,
        }
        for o in batch
    ]
    code = rule_sql(op, params, ORDERS).label("code")
    async with harness.sessionmaker() as session, session.begin():
        await session.execute(insert(ORDERS), rows)
        stored = (await session.execute(select(ORDERS, code).where(ORDERS.c.tenant_id == tenant.id))).all()
    assert len(stored) == len(rows)
    for row in stored:
        order = dict(row._mapping)
        decided = decide(op, params, order, NOW).error
        assert order["code"] == (decided.value if decided is not None else None), (op, params, order)
