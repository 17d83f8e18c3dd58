"""The business rules as pure functions: every code, and the update merge semantics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bulkops.domain.model import ErrorCode, OperationType
from bulkops.domain.rules import decide, json_merge

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def order(**over: Any) -> dict[str, Any]:
    base = {
        "id": "o1",
        "tenant_id": "t",
        "status": "PAID",
        "currency": "USD",
        "total_cents": 1000,
        "refunded_cents": 0,
        "paid_at": NOW,
        "customer_email": None,
        "shipping_method": None,
        "note": None,
        "tags": ["a"],
        "metadata": {"k": 1},
        "version": 3,
        "created_at": NOW,
        "updated_at": NOW,
        "cancelled_at": None,
        "cancel_reason": None,
    }
    return {**base, **over}


@pytest.mark.parametrize(
    ("op", "params", "row", "code"),
    [
        (OperationType.BULK_CANCEL, {}, order(status="CANCELLED"), ErrorCode.ALREADY_CANCELLED),
        (OperationType.BULK_CANCEL, {}, order(status="DELIVERED"), ErrorCode.ORDER_NOT_CANCELLABLE),
        (OperationType.BULK_CANCEL, {}, order(status="PENDING", paid_at=None), None),
        (OperationType.BULK_REFUND, {}, order(paid_at=None), ErrorCode.ORDER_NOT_PAID),
        (OperationType.BULK_REFUND, {}, order(refunded_cents=1000), ErrorCode.NOTHING_TO_REFUND),
        (
            OperationType.BULK_REFUND,
            {"amount_cents": 600},
            order(refunded_cents=500),
            ErrorCode.AMOUNT_EXCEEDS_REFUNDABLE,
        ),
        (OperationType.BULK_REFUND, {"amount_cents": 500}, order(refunded_cents=500), None),
        (OperationType.BULK_UPDATE, {"add_tags": ["x"]}, order(status="CANCELLED"), ErrorCode.ORDER_CLOSED),
        (OperationType.BULK_EXPORT, {}, order(status="CANCELLED"), None),
    ],
)
def test_codes(
    op: OperationType, params: dict[str, Any], row: dict[str, Any], code: ErrorCode | None
) -> None:
    assert decide(op, params, row, NOW).error == code


def test_refund_status_follows_the_amount_and_cancelled_stays_cancelled() -> None:
    assert decide(OperationType.BULK_REFUND, {"amount_cents": 400}, order(), NOW).changes["status"] == (
        "PARTIALLY_REFUNDED"
    )
    assert decide(OperationType.BULK_REFUND, {}, order(refunded_cents=400), NOW).changes == {
        "refunded_cents": 1000,
        "status": "REFUNDED",
    }
    assert (
        decide(OperationType.BULK_REFUND, {}, order(status="CANCELLED"), NOW).changes["status"] == "CANCELLED"
    )


def test_update_merges_and_bumps_version() -> None:
    d = decide(
        OperationType.BULK_UPDATE,
        {
            "set": {"note": "n"},
            "add_tags": ["b", "a"],
            "remove_tags": ["a"],
            "metadata": {"k": None, "x": {"y": 1}},
        },
        order(),
        NOW,
    )
    # remove_tags applies first, then add_tags: a tag named in both ends up present.
    assert d.changes == {"note": "n", "tags": ["b", "a"], "metadata": {"x": {"y": 1}}, "version": 4}


def test_json_merge_is_rfc7386() -> None:
    assert json_merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": None, "e": 3}, "d": [1]}) == {
        "a": {"c": 2, "e": 3},
        "d": [1],
    }


def test_export_picks_fields_in_order() -> None:
    d = decide(OperationType.BULK_EXPORT, {"fields": ["total_cents", "id", "paid_at"]}, order(), NOW)
    assert d.result == {"total_cents": 1000, "id": "o1", "paid_at": NOW.isoformat()}
