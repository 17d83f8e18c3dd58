"""`GET …/export`: the exported rows, in selection order, as CSV or NDJSON; 409 until ended."""

from __future__ import annotations

import csv
import io
import json
import uuid

from bulkops.domain.model import ORDER_FIELDS
from tests.harness import Harness, shuffled


async def test_export_10k_csv_in_selection_order(harness: Harness) -> None:
    h = harness
    # Local activities: the same per-order activity at several times the rate, which keeps this
    # 10,000-order case affordable in the default run (and exercises that mode end to end).
    h.configure(local_activities=True)
    await h.start_worker()
    a, b = await h.tenant("acme"), await h.tenant("other")
    ids = shuffled(
        await h.seed(
            a,
            10_000,
            tags=["vip", "eu"],
            metadata={"src": "x", "n": [1, 2]},
            note='says "hi", twice\nand more',
        )
    )
    op = await h.start(
        a,
        {
            "operation_type": "BULK_EXPORT",
            "order_ids": [str(i) for i in ids],
            "parameters": {"format": "csv"},
            "max_concurrency": 200,
        },
    )
    url = f"/v1/bulk-operations/{op['id']}/export"
    assert op["links"]["export"].endswith(url)

    running = await a.get(url)
    assert running.status_code == 409
    assert running.headers["content-type"] == "application/problem+json"
    assert (await b.get(url)).status_code == 404

    final = await h.wait_end(a, op["id"], timeout=600)
    assert (final["status"], final["success_count"]) == ("COMPLETED", 10_000)
    assert (await b.get(url)).status_code == 404

    r = await a.get(url)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == f'attachment; filename="bulk-op-{op["id"]}.csv"'
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == list(ORDER_FIELDS)
    body = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [uuid.UUID(row["id"]) for row in body] == ids  # one row per order, in selection order
    orders = await h.orders(ids[:50])
    for row in body[:50]:
        order = orders[uuid.UUID(row["id"])]
        assert row["tenant_id"] == a.id and row["status"] == "PAID"
        assert int(row["total_cents"]) == order.total_cents
        assert row["customer_email"] == order.customer_email
        assert row["note"] == 'says "hi", twice\nand more'
        assert json.loads(row["tags"]) == ["vip", "eu"]
        assert json.loads(row["metadata"]) == {"src": "x", "n": [1, 2]}
        assert row["cancelled_at"] == "" and row["shipping_method"] == ""


async def test_export_jsonl_with_fields_only_succeeded(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant("acme")
    ids = await h.seed(a, 6)
    unknown = [uuid.uuid4(), uuid.uuid4()]
    selection = [ids[0], unknown[0], *ids[1:4], unknown[1], *ids[4:]]
    fields = ["total_cents", "id", "tags", "paid_at"]
    op = await h.start(
        a,
        {
            "operation_type": "BULK_EXPORT",
            "order_ids": [str(i) for i in selection],
            "parameters": {"format": "jsonl", "fields": fields},
        },
    )
    final = await h.wait_end(a, op["id"])
    assert (final["status"], final["success_count"], final["failed_count"]) == ("PARTIAL_SUCCESS", 6, 2)

    r = await a.get(f"/v1/bulk-operations/{op['id']}/export")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-ndjson"
    assert r.headers["content-disposition"] == f'attachment; filename="bulk-op-{op["id"]}.jsonl"'
    lines = r.text.splitlines()
    objs = [json.loads(line) for line in lines]
    assert [list(o) for o in objs] == [fields] * 6  # the requested fields, in the requested order
    assert [uuid.UUID(o["id"]) for o in objs] == ids
    orders = await h.orders(ids)
    assert all(o["total_cents"] == orders[uuid.UUID(o["id"])].total_cents and o["tags"] == [] for o in objs)
    assert all(o["paid_at"] is not None for o in objs)


async def test_export_of_other_operation_types_is_409(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant("acme")
    ids = await h.seed(a, 2)
    op = await h.start(
        a,
        {
            "operation_type": "BULK_UPDATE",
            "order_ids": [str(i) for i in ids],
            "parameters": {"add_tags": ["x"]},
        },
    )
    assert op["links"]["export"] is None
    await h.wait_end(a, op["id"])
    r = await a.get(f"/v1/bulk-operations/{op['id']}/export")
    assert r.status_code == 409
    assert "BULK_EXPORT" in r.json()["detail"]
    assert (await a.get(f"/v1/bulk-operations/{uuid.uuid4()}/export")).status_code == 404


async def test_csv_cells_that_a_spreadsheet_would_run_are_quoted_as_text(harness: Harness) -> None:
    h = harness
    await h.start_worker()
    a = await h.tenant("acme")
    hostile = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "plain note"]
    ids = [(await h.seed(a, 1, note=note))[0] for note in hostile]
    for fmt in ("csv", "jsonl"):
        op = await h.start(
            a,
            {
                "operation_type": "BULK_EXPORT",
                "order_ids": [str(i) for i in ids],
                "parameters": {"format": fmt, "fields": ["id", "note", "total_cents"]},
            },
        )
        assert (await h.wait_end(a, op["id"]))["status"] == "COMPLETED"
        r = await a.get(f"/v1/bulk-operations/{op['id']}/export")
        if fmt == "csv":
            rows = list(csv.reader(io.StringIO(r.text)))[1:]
            assert [row[1] for row in rows] == ["'" + n for n in hostile[:5]] + ["plain note"]
            assert all(not row[2].startswith("'") for row in rows)  # numbers are left alone
        else:  # NDJSON is data, not a spreadsheet: values exactly as stored
            assert [json.loads(line)["note"] for line in r.text.splitlines()] == hostile
