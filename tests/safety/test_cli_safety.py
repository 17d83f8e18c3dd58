"""`bulkops tenant add-key` and `bulkops tenant policy`, on the session's PostgreSQL."""

from __future__ import annotations

import json

from bulkops.domain.people import Role
from bulkops.service.auth import authenticate
from tests.harness import Harness
from tests.test_cli import cli


def _printed_key(output: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in output.splitlines() if line.startswith("API key:"))


async def test_add_user_add_key_with_role_and_set_policy(harness: Harness) -> None:
    h = harness
    t = await h.tenant()
    result = await cli(
        h, "tenant", "add-user", t.id, "Anna@Example.test", "--role", "approver", "--name", "Anna"
    )
    assert result.exit_code == 0, result.output
    first = _printed_key(result.stdout)
    result = await cli(h, "tenant", "add-key", t.id, "--role", "operator", "--user", "anna@example.test")
    assert result.exit_code == 0, result.output
    second = _printed_key(result.stdout)
    result = await cli(h, "tenant", "add-key", t.id, "--role", "admin", "--service", "deploy-bot")
    assert result.exit_code == 0, result.output
    bot = _printed_key(result.stdout)
    async with h.sessionmaker() as session:
        p1, p2, p3 = [await authenticate(session, k) for k in (first, second, bot)]
    assert p1 is not None and p2 is not None and p3 is not None
    # Both of Anna's keys act as Anna; the service key as no one.
    assert (p1.tenant_id, p1.role, p1.user_name, p1.service) == (t.id, Role.APPROVER, "Anna", False)
    assert (p2.role, p2.user_id) == (Role.OPERATOR, p1.user_id)
    assert (p3.role, p3.user_id, p3.key_name, p3.service) == (Role.ADMIN, None, "deploy-bot", True)
    # A personal key is never above its person; an email is one person, whatever its case.
    for args, code in [
        (("add-key", t.id, "--role", "admin", "--user", "anna@example.test"), 1),
        (("add-key", t.id, "--role", "viewer", "--user", "nobody@example.test"), 1),
        (("add-key", t.id, "--role", "viewer"), 2),
        (("add-key", t.id, "--role", "viewer", "--user", "a@b.c", "--service", "x"), 2),
        (("add-user", t.id, "ANNA@example.test", "--role", "viewer"), 1),
        (("add-key", "no-such-tenant", "--role", "viewer", "--service", "x"), 1),
        (("add-key", t.id, "--role", "boss", "--service", "x"), 2),
    ]:
        result = await cli(h, "tenant", *args)
        assert result.exit_code == code, (args, result.output)

    result = await cli(
        h, "tenant", "policy", t.id, "--approve-type", "BULK_REFUND", "--approve-over-orders", "500",
        "--approval-window", "600", "--max-orders-per-second", "25",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["approval_types"] == ["BULK_REFUND"] and shown["approval_over_orders"] == 500
    api = (await t.get("/v1/tenant/policy")).json()
    assert api == shown and api["approval_window_s"] == 600 and api["default_max_orders_per_second"] == 25
    # Only the parts given change; --clear starts from the defaults.
    result = await cli(h, "tenant", "policy", t.id, "--approve-over-refund-cents", "10000")
    assert json.loads(result.stdout)["approval_types"] == ["BULK_REFUND"]
    result = await cli(h, "tenant", "policy", t.id, "--clear")
    assert json.loads(result.stdout) == (await t.get("/v1/tenant/policy")).json()
    assert json.loads(result.stdout)["approval_types"] == []
