"""Property-based tests (hypothesis) for the request models: what is valid is accepted and comes out
canonical; what is not is refused with a ValidationError (the API's 422), never passed on."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bulkops.domain.model import MAX_ORDER_IDS, ORDER_FIELDS, OrderStatus
from bulkops.domain.requests import (
    BulkOperationCreate,
    CancelParameters,
    ExportParameters,
    OrdersCreate,
    RefundParameters,
    UpdateParameters,
    parse_parameters,
)
from bulkops.service.operations import request_hash

# Printable text without NUL or surrogates: what PostgreSQL can store.
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
TAG = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=20)
JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
IDS = st.lists(st.uuids(), min_size=1, max_size=8)

cancel_params = st.fixed_dictionaries(
    {},
    optional={
        "reason": st.text(max_size=500)
        .filter(lambda s: "\x00" not in s)
        .map(lambda s: s.encode("utf-8", "ignore").decode())
    },
)
refund_params = st.fixed_dictionaries({}, optional={"reason": TEXT, "amount_cents": st.integers(1, 10**9)})
update_params = st.fixed_dictionaries(
    {},
    optional={
        "set": st.fixed_dictionaries(
            {}, optional={"note": st.none() | TEXT, "shipping_method": st.none() | TEXT}
        ),
        "add_tags": st.lists(TAG, max_size=5),
        "remove_tags": st.lists(TAG, max_size=5),
        "metadata": st.dictionaries(TEXT, JSON, min_size=1, max_size=4),
    },
).filter(lambda p: bool(p.get("set") or p.get("add_tags") or p.get("remove_tags") or p.get("metadata")))
export_params = st.fixed_dictionaries(
    {},
    optional={
        "format": st.sampled_from(["csv", "jsonl"]),
        "fields": st.lists(
            st.sampled_from(ORDER_FIELDS), min_size=1, max_size=len(ORDER_FIELDS), unique=True
        ),
    },
)
PARAMS = {
    "BULK_CANCEL": cancel_params,
    "BULK_REFUND": refund_params,
    "BULK_UPDATE": update_params,
    "BULK_EXPORT": export_params,
}
FILTER = st.fixed_dictionaries(
    {},
    optional={
        "statuses": st.lists(st.sampled_from([s.value for s in OrderStatus]), min_size=1, max_size=3),
        "tags_any": st.lists(TAG, min_size=1, max_size=3),
        "customer_email": st.emails(),
        "created_from": st.datetimes().map(lambda d: d.isoformat()),
    },
)


@st.composite
def create_bodies(draw: st.DrawFn) -> dict[str, Any]:
    op_type = draw(st.sampled_from(sorted(PARAMS)))
    body: dict[str, Any] = {"operation_type": op_type, "parameters": draw(PARAMS[op_type])}
    if draw(st.booleans()):
        # Few distinct ids, so that duplicates are common.
        pool = draw(IDS)
        body["order_ids"] = [str(i) for i in draw(st.lists(st.sampled_from(pool), min_size=1, max_size=30))]
    else:
        body["filter"] = draw(FILTER)
    optional = {
        "max_concurrency": st.integers(1, 500),
        "dry_run": st.booleans(),
        "failure_threshold": st.fixed_dictionaries(
            {"max_failure_ratio": st.floats(0, 1)}, optional={"min_processed": st.integers(1, 10**6)}
        ),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            body[key] = draw(strategy)
    return body


@given(create_bodies())
def test_valid_bodies_are_accepted_and_canonical(body: dict[str, Any]) -> None:
    model = BulkOperationCreate.model_validate(body)
    if "order_ids" in body:
        # Duplicates dropped, first occurrence kept, order otherwise unchanged.
        assert model.order_ids == list(dict.fromkeys(uuid.UUID(i) for i in body["order_ids"]))
    assert model.parameters == parse_parameters(model.operation_type, model.parameters)  # a fixed point
    again = BulkOperationCreate.model_validate(model.model_dump(mode="json"))
    assert again == model
    assert request_hash(again) == request_hash(model)
    assert 1 <= model.max_concurrency <= 500


@given(
    create_bodies(),
    st.sampled_from(["top", "parameters", "filter", "failure_threshold", "set"]),
    st.text(min_size=1, max_size=12),
)
def test_unknown_fields_are_rejected(body: dict[str, Any], where: str, name: str) -> None:
    known = {
        "top": set(BulkOperationCreate.model_fields),
        "filter": {"statuses", "created_from", "created_to", "tags_any", "customer_email"},
        "failure_threshold": {"max_failure_ratio", "min_processed"},
        "parameters": {
            "reason",
            "amount_cents",
            "set",
            "add_tags",
            "remove_tags",
            "metadata",
            "format",
            "fields",
        },
        "set": {"note", "shipping_method"},
    }
    if name in known[where]:
        return
    target = {"top": body, "parameters": body["parameters"]}.get(where)
    if where == "filter":
        target = body.setdefault("filter", {}) if "filter" in body else None
    elif where == "failure_threshold":
        target = body.setdefault("failure_threshold", {"max_failure_ratio": 0.5})
    elif where == "set":
        if body["operation_type"] != "BULK_UPDATE":
            return
        target = body["parameters"].setdefault("set", {"note": "n"})
    if target is None:
        return
    target[name] = 1
    with pytest.raises(ValidationError):
        BulkOperationCreate.model_validate(body)


@settings(max_examples=25)
@given(st.integers(1, MAX_ORDER_IDS))
def test_order_id_count_within_bounds_is_accepted(n: int) -> None:
    ids = [str(uuid.UUID(int=i + 1)) for i in range(n)]
    model = BulkOperationCreate.model_validate({"operation_type": "BULK_CANCEL", "order_ids": ids})
    assert model.order_ids is not None and len(model.order_ids) == n


@pytest.mark.parametrize("n", [0, MAX_ORDER_IDS + 1, MAX_ORDER_IDS * 3])
def test_order_id_count_outside_bounds_is_rejected(n: int) -> None:
    ids = [str(uuid.UUID(int=i + 1)) for i in range(n)]
    with pytest.raises(ValidationError):
        BulkOperationCreate.model_validate({"operation_type": "BULK_CANCEL", "order_ids": ids})


@given(create_bodies())
def test_exactly_one_selection(body: dict[str, Any]) -> None:
    both = {**body, "order_ids": [str(uuid.uuid4())], "filter": {}}
    neither = {k: v for k, v in body.items() if k not in ("order_ids", "filter")}
    for bad in (both, neither):
        with pytest.raises(ValidationError):
            BulkOperationCreate.model_validate(bad)


@given(st.sampled_from(sorted(PARAMS)), st.sampled_from(sorted(PARAMS)), st.data())
def test_parameters_of_another_type_are_rejected(own: str, other: str, data: st.DataObject) -> None:
    params = data.draw(PARAMS[other])
    body = {"operation_type": own, "filter": {}, "parameters": params}
    try:
        model = BulkOperationCreate.model_validate(body)
    except ValidationError:
        return
    # Accepted only when every given field also means something for `own` (e.g. `reason`).
    assert set(params) <= set(
        {
            "BULK_CANCEL": CancelParameters,
            "BULK_REFUND": RefundParameters,
            "BULK_UPDATE": UpdateParameters,
            "BULK_EXPORT": ExportParameters,
        }[own].model_fields
    )
    assert model.parameters == parse_parameters(model.operation_type, params)


@given(
    st.one_of(
        st.text(min_size=501, max_size=600).map(lambda r: ("BULK_CANCEL", {"reason": r})),
        st.integers(max_value=0).map(lambda a: ("BULK_REFUND", {"amount_cents": a})),
        st.just(("BULK_UPDATE", {})),
        st.just(("BULK_UPDATE", {"set": {}})),
        st.text(min_size=1, max_size=12)
        .filter(lambda f: f not in ORDER_FIELDS)
        .map(lambda f: ("BULK_EXPORT", {"fields": [f]})),
        st.text(min_size=1, max_size=8)
        .filter(lambda f: f not in ("csv", "jsonl"))
        .map(lambda f: ("BULK_EXPORT", {"format": f})),
        st.just(("BULK_EXPORT", {"fields": []})),
    )
)
def test_invalid_parameters_are_rejected(case: tuple[str, dict[str, Any]]) -> None:
    op_type, params = case
    with pytest.raises(ValidationError):
        BulkOperationCreate.model_validate({"operation_type": op_type, "filter": {}, "parameters": params})


@given(
    st.one_of(st.integers(max_value=0), st.integers(min_value=501)).map(lambda c: {"max_concurrency": c})
    | st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.000001), st.just(float("nan"))).map(
        lambda r: {"failure_threshold": {"max_failure_ratio": r}}
    )
    | st.integers(max_value=0).map(
        lambda m: {"failure_threshold": {"max_failure_ratio": 0.5, "min_processed": m}}
    )
)
def test_out_of_range_knobs_are_rejected(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BulkOperationCreate.model_validate({"operation_type": "BULK_CANCEL", "filter": {}, **extra})


@given(create_bodies(), st.sampled_from(["\x00", "\ud800", "\udfff"]), st.data())
def test_text_postgres_cannot_store_is_rejected_anywhere(
    body: dict[str, Any], bad: str, data: st.DataObject
) -> None:
    where = data.draw(st.sampled_from(["reason", "tag", "metadata_key", "email"]))
    body = {**body, "operation_type": "BULK_UPDATE", "parameters": {"add_tags": ["ok"]}}
    if where == "reason":
        body = {**body, "operation_type": "BULK_CANCEL", "parameters": {"reason": f"a{bad}b"}}
    elif where == "tag":
        body["parameters"] = {"add_tags": [f"t{bad}"]}
    elif where == "metadata_key":
        body["parameters"] = {"metadata": {f"k{bad}": 1}}
    else:
        body = {k: v for k, v in body.items() if k != "order_ids"} | {
            "filter": {"customer_email": f"x{bad}@y.z"}
        }
    with pytest.raises(ValidationError):
        BulkOperationCreate.model_validate(body)


@given(
    st.lists(
        st.fixed_dictionaries(
            {"total_cents": st.integers(0, 10**12)},
            optional={
                "note": TEXT,
                "tags": st.lists(TAG, max_size=5),
                "metadata": st.dictionaries(TEXT, JSON, max_size=3),
                "status": st.sampled_from([s.value for s in OrderStatus]),
                "currency": st.sampled_from(["USD", "EUR"]),
            },
        ),
        min_size=1,
        max_size=5,
    )
)
def test_valid_orders_are_accepted(orders: list[dict[str, Any]]) -> None:
    model = OrdersCreate.model_validate({"orders": orders})
    assert [o.total_cents for o in model.orders] == [o["total_cents"] for o in orders]
    assert OrdersCreate.model_validate(model.model_dump(mode="json")) == model
