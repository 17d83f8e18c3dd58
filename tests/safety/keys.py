"""What the safety tests share: API keys of a given role for a harness tenant (and the usual cast of
them, the `crew` fixture), setting the tenant's policy and reading the audit."""

from __future__ import annotations

from typing import Any, NamedTuple

from bulkops.domain.safety import Role
from bulkops.service.auth import add_key
from tests.harness import Harness, Tenant


class Crew(NamedTuple):
    """A fresh tenant's admin key, an operator and an approver (tests/safety/conftest.py)."""

    h: Harness
    admin: Tenant
    operator: Tenant  # named "olga" in the audit trail
    approver: Tenant  # named "anna"


async def key(h: Harness, tenant: Tenant, role: Role, name: str | None = None) -> Tenant:
    """The same tenant, seen through a new key of `role`."""
    async with h.sessionmaker() as session, session.begin():
        api_key = await add_key(session, tenant.id, name, role)
    return Tenant(tenant.id, api_key, tenant.webhook_secret, h.http)


async def audit(tenant: Tenant, op_id: str) -> list[dict[str, Any]]:
    r = await tenant.get(f"/v1/bulk-operations/{op_id}/audit")
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def set_policy(tenant: Tenant, **policy: Any) -> None:
    r = await tenant.http.put(
        "/v1/tenant/policy", json=policy, headers={"Authorization": f"Bearer {tenant.api_key}"}
    )
    assert r.status_code == 200, r.text
