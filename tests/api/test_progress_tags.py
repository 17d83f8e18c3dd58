"""A reader that sends back each view's `ETag` (`If-None-Match`) never sees an operation's counters go
back, whichever API process answers. Found by `bulkops chaos --seed 11 --duration 3600`: a poller that
alternated between two API processes saw `processed_count` go 52 -> 35 and 1 -> 0 while a worker was
down, because each process keeps its own floor and the other one's last answer was the checkpoint."""

from __future__ import annotations

import httpx

from tests.harness import Harness
from tests.serving import serve


async def test_a_reader_with_its_etag_never_sees_counters_go_back_on_another_process(
    harness: Harness,
) -> None:
    h = harness
    settings = h.configure(progress_query_timeout_s=1.0)
    await h.start_worker()
    t = await h.tenant("tags")
    ids = await h.seed(t, 200, status="PAID", total_cents=500)
    body = {
        "operation_type": "BULK_REFUND",
        "order_ids": [str(i) for i in ids],
        "max_orders_per_second": 20,
        "parameters": {"reason": "tags"},
    }
    op = await h.start(t, body)
    live = await h.wait_for(
        t, op["id"], lambda b: b["progress_source"] == "live" and b["processed_count"] >= 20
    )
    first = await t.get(f"/v1/bulk-operations/{op['id']}")
    tag, seen = first.headers["etag"], first.json()
    assert seen["processed_count"] >= live["processed_count"]
    await h.stop_worker()
    headers = {"Authorization": f"Bearer {t.api_key}"}
    async with serve(settings) as (other, _app), httpx.AsyncClient(base_url=other, headers=headers) as b:
        # The other process has answered nothing live for this operation: its answer is the checkpoint.
        plain = await b.get(f"/v1/bulk-operations/{op['id']}")
        assert plain.status_code == 200 and plain.json()["progress_source"] == "checkpoint"
        assert plain.json()["processed_count"] < seen["processed_count"], "the checkpoint should lag"
        held = await b.get(f"/v1/bulk-operations/{op['id']}", headers={"If-None-Match": tag})
        assert held.status_code == 304 and held.headers["etag"] == tag and held.content == b""
        # A tag that is not ours (or is malformed) matches nothing.
        for other_tag in ('"x"', 'W/"1.2"', "*", 'W/"1.1.0.NOPE"'):
            r = await b.get(f"/v1/bulk-operations/{op['id']}", headers={"If-None-Match": other_tag})
            assert r.status_code == 200, (other_tag, r.status_code)
    await h.start_worker()
    assert (await t.post(f"/v1/bulk-operations/{op['id']}/cancel")).status_code == 200
    ended = await h.wait_end(t, op["id"])
    final = await t.get(f"/v1/bulk-operations/{op['id']}", headers={"If-None-Match": tag})
    assert final.status_code == 200 and final.json() == ended | {"progress_at": final.json()["progress_at"]}
    assert (
        final.json()["processed_count"] >= seen["processed_count"] and final.json()["status"] == "CANCELLED"
    )
    # The final view's own tag: nothing newer will come.
    again = await t.get(f"/v1/bulk-operations/{op['id']}", headers={"If-None-Match": final.headers["etag"]})
    assert again.status_code == 304
