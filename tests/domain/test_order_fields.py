"""The order's field list is declared once (`OrderField`); what must follow it does."""

from __future__ import annotations

from api.schemas import OrderRead
from bulkops.domain.model import ORDER_FIELDS
from bulkops.store.tables import ORDERS


def test_the_api_shape_and_the_table_follow_the_field_list() -> None:
    assert tuple(OrderRead.model_fields) == ORDER_FIELDS
    assert tuple(c.name for c in ORDERS.columns) == ORDER_FIELDS
