"""`/v1/tenant`: the calling key's tenant — its approval and pace policy, and its API keys (admin)."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AdminDep, PrincipalDep, SafetyDep
from api.problems import Problem
from bulkops.domain.safety import Role, TenantPolicy

router = APIRouter(prefix="/v1/tenant", tags=["tenant"])


class KeyRead(BaseModel):
    id: uuid.UUID
    name: str
    role: Role
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[^\x00]*$")


class KeyCreated(KeyRead):
    api_key: str = Field(description="the new key; shown only this once")


@router.get("/policy", response_model=TenantPolicy)
async def get_policy(principal: PrincipalDep, safety: SafetyDep) -> TenantPolicy:
    """Which operations need a second person's approval, how long they wait, and the default pace."""
    return await safety.policy(principal.tenant_id)


@router.put("/policy", response_model=TenantPolicy)
async def put_policy(body: TenantPolicy, principal: AdminDep, safety: SafetyDep) -> TenantPolicy:
    """Replace the tenant's policy (admin keys). It applies to operations created from now on."""
    return await safety.set_policy(principal.tenant_id, body)


@router.get("/keys", response_model=list[KeyRead])
async def get_keys(principal: AdminDep, safety: SafetyDep) -> list[KeyRead]:
    """The tenant's API keys (never the keys themselves: only their prefixes)."""
    return [KeyRead.model_validate(r, from_attributes=True) for r in await safety.keys(principal.tenant_id)]


@router.post("/keys", status_code=201, response_model=KeyCreated)
async def create_key(body: KeyCreate, principal: AdminDep, safety: SafetyDep) -> KeyCreated:
    """Add an API key with a role; the key itself is in this answer only."""
    key, row = await safety.add_key(principal.tenant_id, body.role, body.name)
    return KeyCreated(**KeyRead.model_validate(row, from_attributes=True).model_dump(), api_key=key)


@router.delete("/keys/{key_id}", status_code=204)
async def delete_key(key_id: uuid.UUID, principal: AdminDep, safety: SafetyDep) -> Response:
    """Revoke one of the tenant's keys; requests with it get 401 from then on."""
    if not await safety.revoke_key(principal.tenant_id, key_id):
        raise Problem(404, "no such active API key")
    return Response(status_code=204)
