"""The new-operation form as the API's create body (no browser: the form's rules, and an uploaded file
of order ids through the real app)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.datastructures import MultiDict

from api.console.forms import FormError, create_body
from tests.console.helpers import csrf_token, sign_in_http
from tests.harness import Harness


def form(**fields: str | list[str]) -> MultiDict:
    items: list[tuple[str, str]] = []
    for name, value in fields.items():
        items += [(name, v) for v in value] if isinstance(value, list) else [(name, value)]
    return MultiDict(items)


def test_ids_pasted_in_any_shape_become_one_list_without_duplicates() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    text = f'order_id\n"{a}",\n{b}; {a}\n'
    body, model = create_body(form(operation_type="BULK_CANCEL", selection="ids"), text)
    assert body["order_ids"] == [str(a), str(b)] and model.order_ids == [a, b]


@pytest.mark.parametrize(
    ("fields", "ids", "message"),
    [
        ({"selection": "ids"}, "not-an-id", "order_ids.0"),
        ({"selection": "ids"}, "", "at least one order id"),
        ({"selection": "filter"}, "", "at least one filter"),
        ({"selection": "filter", "statuses": "PAID", "max_concurrency": "0"}, "", "max_concurrency"),
        ({"operation_type": "BULK_UPDATE", "statuses": "PAID", "update_metadata": "{oops"}, "", "not JSON"),
        ({"operation_type": "BULK_UPDATE", "statuses": "PAID"}, "", "at least one of set"),
        (
            {"operation_type": "BULK_REFUND", "statuses": "PAID", "refund_amount_cents": "-5"},
            "",
            "amount_cents",
        ),
    ],
)
def test_invalid_forms_say_what_is_wrong(fields: dict[str, str], ids: str, message: str) -> None:
    with pytest.raises(FormError) as err:
        create_body(form(**{"operation_type": "BULK_CANCEL", **fields}), ids)
    assert any(message in m for m in err.value.messages), err.value.messages


def test_each_type_takes_only_its_own_parameters() -> None:
    fields = form(
        operation_type="BULK_EXPORT",
        statuses=["PAID", "SHIPPED"],
        export_format="jsonl",
        export_fields=["id", "status"],
        cancel_reason="ignored",
        created_from="2026-01-01T00:00",
    )
    body, _ = create_body(fields, "")
    assert body["parameters"] == {"format": "jsonl", "fields": ["id", "status"]}
    assert body["filter"] == {"statuses": ["PAID", "SHIPPED"], "created_from": "2026-01-01T00:00:00Z"}


async def test_a_file_of_order_ids_previews_like_the_api(harness: Harness) -> None:
    tenant = await harness.tenant("forms")
    ids = await harness.seed(tenant, 4, status="PENDING", paid_at=None)
    unknown = uuid.uuid4()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=harness.app), base_url="http://console.test"
    ) as web:
        await sign_in_http(web, tenant.api_key)
        csrf = csrf_token((await web.get("/console/operations/new")).text)
        upload = "id\n" + "\n".join(str(i) for i in [*ids, unknown]) + "\n"
        preview = await web.post(
            "/console/operations/new",
            data={
                "csrf_token": csrf,
                "operation_type": "BULK_CANCEL",
                "selection": "ids",
                "max_concurrency": "5",
            },
            files={"order_ids_file": ("ids.csv", upload.encode(), "text/csv")},
        )
    assert preview.status_code == 200, preview.text
    api = await tenant.post(
        "/v1/bulk-operations",
        json={
            "operation_type": "BULK_CANCEL",
            "order_ids": [str(i) for i in [*ids, unknown]],
            "dry_run": True,
        },
    )
    assert api.json()["matched_count"] == 5 and api.json()["would_fail_by_code"] == {"ORDER_NOT_FOUND": 1}
    assert re.search(r'data-testid="matched">5<', preview.text)
    assert re.search(r'data-testid="would-fail">1<', preview.text)
    assert 'data-code="ORDER_NOT_FOUND">1<' in preview.text
    # Nothing started: the preview is a dry run.
    assert (await tenant.get("/v1/bulk-operations")).json()["items"] == []


def test_start_time_and_pace_pass_through() -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    fields = form(
        operation_type="BULK_REFUND",
        statuses="PAID",
        start_at=start,
        max_orders_per_second="2.5",
        max_failure_ratio="0.2",
        min_processed="10",
    )
    body, _ = create_body(fields, "")
    assert (body["start_at"], body["max_orders_per_second"]) == (f"{start}:00Z", 2.5)
    assert body["failure_threshold"] == {"max_failure_ratio": 0.2, "min_processed": 10}
