"""Each typed record carries every column of its table, and nothing else: a column added by a
migration without its field (or a field without its column) fails here, not in production."""

from __future__ import annotations

from dataclasses import fields

from bulkops.domain.records import ItemRecord, OperationRecord, OrderRecord
from bulkops.store.tables import ITEMS, OPERATIONS, ORDERS


def test_operation_record_is_the_operations_table() -> None:
    assert sorted(f.name for f in fields(OperationRecord)) == sorted(OPERATIONS.c.keys())


def test_item_record_is_the_items_table() -> None:
    assert sorted(f.name for f in fields(ItemRecord)) == sorted(ITEMS.c.keys())


def test_order_record_is_the_orders_table() -> None:
    assert sorted(f.name for f in fields(OrderRecord)) == sorted(ORDERS.c.keys())
