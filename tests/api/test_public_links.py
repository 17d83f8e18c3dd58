"""Links come from the configured public URL, never from the request's `Host` header (which the
client picks), in answers and in the shared event feed; `tags_any` is bounded."""

from __future__ import annotations

from tests.harness import Harness


async def test_links_ignore_the_host_header(harness: Harness) -> None:
    h = harness
    h.configure(public_api_url="https://bulkops.example.com")
    await h.start_worker()
    t = await h.tenant()
    ids = await h.seed(t, 1)
    body = {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids], "parameters": {}}
    evil = {"Host": "attacker.example"}
    op = await h.start(t, body, headers=evil)
    assert op["links"]["self"] == f"https://bulkops.example.com/v1/bulk-operations/{op['id']}"
    await h.wait_end(t, op["id"])
    for path in (f"/v1/bulk-operations/{op['id']}", "/v1/bulk-operations"):
        assert "attacker" not in (await t.get(path, headers=evil)).text
    events = await t.get(f"/v1/bulk-operations/{op['id']}/events", headers=evil)
    assert "bulkops.example.com" in events.text and "attacker" not in events.text


async def test_tags_any_is_bounded(harness: Harness) -> None:
    t = await harness.tenant()
    for tags in (["x"] * 101, ["x" * 101], [""]):
        body = {"operation_type": "BULK_EXPORT", "filter": {"tags_any": tags}, "dry_run": True}
        r = await t.post("/v1/bulk-operations", json=body)
        assert r.status_code == 422 and "tags_any" in r.json()["detail"], r.text
    ok = {"operation_type": "BULK_EXPORT", "filter": {"tags_any": ["x"] * 100}, "dry_run": True}
    assert (await t.post("/v1/bulk-operations", json=ok)).status_code == 200
