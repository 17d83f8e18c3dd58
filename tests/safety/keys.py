"""What the safety tests share: API keys of a given role for a harness tenant (and the usual cast of
them, the `crew` fixture), setting the tenant's policy and reading the audit."""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

from bulkops.domain.people import Role
from bulkops.service.auth import add_key, authenticate
from bulkops.service.people import add_personal_key, insert_user
from tests.harness import Harness, Tenant


class Crew(NamedTuple):
    """A fresh tenant's admin key, an operator and an approver (tests/safety/conftest.py)."""

    h: Harness
    admin: Tenant
    operator: Tenant  # named "olga" in the audit trail
    approver: Tenant  # named "anna"


async def key(h: Harness, tenant: Tenant, role: Role, name: str | None = None) -> Tenant:
    """The same tenant, seen through the first key of a new person of `role` (named `name`)."""
    async with h.sessionmaker() as session, session.begin():
        label = name or role.value
        user = await insert_user(
            session, tenant.id, f"{label}-{uuid.uuid4().hex[:8]}@example.test", label, role
        )
        api_key = await add_key(session, tenant.id, name, role, user_id=user.id)
    return Tenant(tenant.id, api_key, tenant.webhook_secret, tenant.http)


async def own_key(h: Harness, tenant: Tenant, role: Role, name: str | None = None) -> Tenant:
    """Another key of the same person as `tenant`'s key, with `role` (at most that person's)."""
    async with h.sessionmaker() as session, session.begin():
        principal = await authenticate(session, tenant.api_key)
        assert principal is not None and principal.user_id is not None
        api_key = await add_personal_key(session, tenant.id, uuid.UUID(principal.user_id), role, name)
    return Tenant(tenant.id, api_key, tenant.webhook_secret, tenant.http)


async def service_key(h: Harness, tenant: Tenant, role: Role, name: str) -> Tenant:
    """The same tenant, seen through a new service key."""
    async with h.sessionmaker() as session, session.begin():
        api_key = await add_key(session, tenant.id, name, role, service=True)
    return Tenant(tenant.id, api_key, tenant.webhook_secret, tenant.http)


async def audit(tenant: Tenant, op_id: str) -> list[dict[str, Any]]:
    r = await tenant.get(f"/v1/bulk-operations/{op_id}/audit")
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def set_policy(tenant: Tenant, **policy: Any) -> None:
    r = await tenant.http.put(
        "/v1/tenant/policy", json=policy, headers={"Authorization": f"Bearer {tenant.api_key}"}
    )
    assert r.status_code == 200, r.text
