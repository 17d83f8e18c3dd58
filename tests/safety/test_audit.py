"""The audit trail of a run that was created, approved, paused, resumed and cancelled — with the
worker SIGKILLed in between — lists each action once, with the key that asked for it."""

from __future__ import annotations

from collections import Counter

import pytest

from bulkops.domain.people import Role
from tests.harness import Stack
from tests.processes import WorkerProcess
from tests.safety.keys import Crew, audit, key, set_policy

pytestmark = pytest.mark.faults


async def test_audit_lists_each_action_once_with_its_actor(stack: Stack, crew: Crew) -> None:
    h, admin, olga, anna = crew
    settings = h.configure(activity_timeout_s=2.0, worker_metrics_port=0, activity_max_attempts=10)
    paul = await key(h, admin, Role.OPERATOR, "paul")
    await set_policy(admin, approval_types=["BULK_UPDATE"])
    ids = await h.seed(admin, 400)
    worker = WorkerProcess(settings, stack.root / "audit-worker.log")
    worker.start()
    try:
        op = await h.start(
            olga,
            {
                "operation_type": "BULK_UPDATE",
                "order_ids": [str(i) for i in ids],
                "parameters": {"set": {"note": "audited"}},
                "max_concurrency": 5,
                "max_orders_per_second": 20,
            },
        )
        assert op["status"] == "AWAITING_APPROVAL"
        url = f"/v1/bulk-operations/{op['id']}"
        assert (await anna.post(f"{url}/approve", json={"comment": "ok"})).status_code == 200
        await h.wait_for(olga, op["id"], lambda b: b["processed_count"] >= 20, timeout=60)
        worker.kill()
        worker.start()
        r = await paul.post(f"{url}/pause")
        assert r.status_code == 200, r.text
        paused_at = r.json()["processed_count"]
        worker.kill()
        worker.start()
        assert (await paul.post(f"{url}/resume")).status_code == 200
        await h.wait_for(olga, op["id"], lambda b: b["processed_count"] >= paused_at + 20, timeout=60)
        r = await olga.post(f"{url}/cancel")
        assert r.status_code == 200, r.text
        final = await h.wait_end(olga, op["id"])
    finally:
        worker.stop()
    assert final["status"] == "CANCELLED" and paused_at < final["processed_count"] < 400
    assert len(await h.items(op["id"])) == final["processed_count"]

    events = await audit(olga, op["id"])
    assert [(e["action"], e["actor_name"]) for e in events] == [
        ("created", "olga"),
        ("approved", "anna"),
        ("started", None),
        ("paused", "paul"),
        ("resumed", "paul"),
        ("cancelled", "olga"),
        ("ended", None),
    ]
    assert max(Counter(e["action"] for e in events).values()) == 1
    keys = {k["name"]: k["id"] for k in (await admin.get("/v1/tenant/keys")).json()}
    assert [e["actor_key_id"] for e in events if e["actor_name"]] == [
        keys["olga"], keys["anna"], keys["paul"], keys["paul"], keys["olga"]
    ]  # fmt: skip
    assert events[1]["detail"]["comment"] == "ok"
    assert events[-1]["detail"]["status"] == "CANCELLED"
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
