"""Four-eyes by person: whichever key the creator's own person uses (any role) and any service key
get 403 saying why; another person approves; two approvals at once are one 200 and one 409, and the
operation runs once. The operation, its approval and its audit name the person and the key."""

from __future__ import annotations

import asyncio
from typing import Any

from bulkops.domain.people import Role
from tests.harness import Harness, Tenant
from tests.safety.keys import Crew, audit, key, set_policy

PROBLEM = "application/problem+json"


async def _minted(admin: Tenant, **body: Any) -> Tenant:
    """A key minted through the API by `admin` (the issue's way of getting a second key)."""
    r = await admin.post("/v1/tenant/keys", json=body)
    assert r.status_code == 201, r.text
    return Tenant(admin.id, r.json()["api_key"], admin.webhook_secret, admin.http)


async def _held(
    h: Harness, creator: Tenant, operation_type: str, n: int, **seed: Any
) -> tuple[dict[str, Any], list[Any]]:
    """`creator`'s operation over n new PAID orders, held for approval by the tenant's policy."""
    ids = await h.seed(creator, n, status="PAID", **seed)
    body = {
        "operation_type": operation_type,
        "order_ids": [str(i) for i in ids],
        "parameters": {"reason": "x"},
    }
    op = await h.start(creator, body)
    assert op["status"] == "AWAITING_APPROVAL", op
    return op, ids


async def test_the_creators_own_keys_and_service_keys_cannot_approve(crew: Crew) -> None:
    h, admin, _olga, anna = crew
    await h.start_worker()
    await set_policy(admin, approval_types=["BULK_CANCEL"])
    op, ids = await _held(h, admin, "BULK_CANCEL", 4)
    url = f"/v1/bulk-operations/{op['id']}"

    # The admin mints a second key named "anna" for themself, of each role that may approve: it is
    # still the admin's person, and may neither approve nor reject.
    for role in ("approver", "admin"):
        own = await _minted(admin, role=role, name="anna")
        for verb in ("approve", "reject"):
            r = await own.post(f"{url}/{verb}")
            assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM), r.text
            assert "person who created" in r.json()["detail"], r.text
    # A service key never decides, whatever its role.
    bot = await _minted(admin, role="admin", name="deploy-bot", service=True)
    for verb in ("approve", "reject"):
        r = await bot.post(f"{url}/{verb}")
        assert r.status_code == 403 and "service key" in r.json()["detail"], r.text
    # Nothing moved meanwhile.
    assert all(o.status == "PAID" for o in (await h.orders(ids)).values())
    assert (await h.summary_row(op["id"])).status == "AWAITING_APPROVAL"

    # Another person approves.
    r = await anna.post(f"{url}/approve", json={"comment": "ok"})
    assert r.status_code == 200, r.text
    final = await h.wait_end(admin, op["id"])
    assert (final["status"], final["success_count"], final["failed_count"]) == ("COMPLETED", 4, 0)
    assert all(o.status == "CANCELLED" for o in (await h.orders(ids)).values())

    # Who: the person, and the key they acted through.
    admin_person = final["created_by"]
    assert (admin_person["name"], admin_person["key_name"], admin_person["service"]) == (
        "admin",
        "admin",
        False,
    )
    assert final["initiated_by"] == "admin (key admin)"
    approval = final["approval"]
    assert (approval["decided_by"], approval["decided_by_key_name"]) == ("anna", "anna")
    assert approval["decided_by_user_id"] and approval["decided_by_user_id"] != admin_person["user_id"]
    events = {e["action"]: e for e in await audit(admin, op["id"])}
    assert events["created"]["actor_user_id"] == admin_person["user_id"]
    assert (events["approved"]["actor_name"], events["approved"]["actor_key_name"]) == ("anna", "anna")
    assert events["approved"]["actor_user_id"] == approval["decided_by_user_id"]


async def test_two_approvals_at_once_one_wins(crew: Crew) -> None:
    h, admin, olga, anna = crew
    await h.start_worker()
    bob = await key(h, admin, Role.APPROVER, "bob")
    await set_policy(admin, approval_types=["BULK_REFUND"])
    op, ids = await _held(h, olga, "BULK_REFUND", 6, total_cents=500)

    answers = await asyncio.gather(
        anna.post(f"/v1/bulk-operations/{op['id']}/approve"),
        bob.post(f"/v1/bulk-operations/{op['id']}/approve"),
    )
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    final = await h.wait_end(admin, op["id"])
    assert (final["status"], final["total_count"], final["success_count"], final["failed_count"]) == (
        "COMPLETED",
        6,
        6,
        0,
    )
    refunds = await h.refunds(op["id"])
    assert len(refunds) == 6 and sum(r.amount_cents for r in refunds) == 6 * 500
    assert all(o.refunded_cents == 500 for o in (await h.orders(ids)).values())
    actions = [e["action"] for e in await audit(admin, op["id"])]
    assert actions.count("approved") == 1 and actions.count("started") == 1, actions
    winner = next(r for r in answers if r.status_code == 200)
    assert final["approval"]["decided_by"] == winner.json()["approval"]["decided_by"]
