"""`bulkops tenant add-key` and `bulkops tenant policy`, on the session's PostgreSQL."""

from __future__ import annotations

import json

from bulkops.domain.safety import Role
from bulkops.service.auth import authenticate
from tests.harness import Harness
from tests.test_cli import cli


async def test_add_key_with_role_and_set_policy(harness: Harness) -> None:
    h = harness
    t = await h.tenant()
    result = await cli(h, "tenant", "add-key", t.id, "--role", "approver", "--name", "anna")
    assert result.exit_code == 0, result.output
    key = next(
        line.split(":", 1)[1].strip() for line in result.stdout.splitlines() if line.startswith("API key:")
    )
    async with h.sessionmaker() as session:
        principal = await authenticate(session, key)
    assert principal is not None and (principal.tenant_id, principal.role, principal.key_name) == (
        t.id,
        Role.APPROVER,
        "anna",
    )
    assert (await cli(h, "tenant", "add-key", "no-such-tenant", "--role", "viewer")).exit_code == 1
    assert (await cli(h, "tenant", "add-key", t.id, "--role", "boss")).exit_code == 2

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
