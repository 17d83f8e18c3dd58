"""`/v1/tenant`: the calling key's tenant — its approval and pace policy, its people and their API
keys (admin)."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.deps import AdminDep, ControlsDep, PeopleDep, PrincipalDep
from api.problems import Problem
from bulkops.domain.approval import TenantPolicy
from bulkops.domain.people import Role, checked_email
from bulkops.service.errors import NotFound

router = APIRouter(prefix="/v1/tenant", tags=["tenant"])
_TEXT = r"^[^\x00]*$"


class KeyRead(BaseModel):
    id: uuid.UUID
    name: str
    role: Role
    prefix: str
    user_id: uuid.UUID | None = Field(description="the person a personal key acts as (none: a service key)")
    service: bool
    created_at: datetime
    revoked_at: datetime | None


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=_TEXT)
    user_id: uuid.UUID | None = Field(
        default=None, description="whose personal key (admins; default: the caller's own person)"
    )
    service: bool = Field(default=False, description="a service key: acts as no person, never approves")

    @model_validator(mode="after")
    def _one_owner(self) -> KeyCreate:
        if self.service and self.user_id is not None:
            raise ValueError("a key is a service key or a user's personal key, not both")
        return self


class KeyCreated(KeyRead):
    api_key: str = Field(description="the new key; shown only this once")


class UserRead(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    enabled: bool
    subject: str | None = Field(description="the identity provider's `sub`, once signed in through it")
    issuer: str | None
    created_at: datetime


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320, description="unique in the tenant, whatever its case")
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=_TEXT)
    role: Role

    _email = field_validator("email")(checked_email)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    enabled: bool | None = Field(default=None, description="false revokes their keys and ends their sessions")
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=_TEXT)


@router.get("/policy", response_model=TenantPolicy)
async def get_policy(principal: PrincipalDep, controls: ControlsDep) -> TenantPolicy:
    """Which operations need a second person's approval, how long they wait, and the default pace."""
    return await controls.policy(principal.tenant_id)


@router.put("/policy", response_model=TenantPolicy)
async def put_policy(body: TenantPolicy, principal: AdminDep, controls: ControlsDep) -> TenantPolicy:
    """Replace the tenant's policy (admin keys). It applies to operations created from now on."""
    return await controls.set_policy(principal.tenant_id, body)


@router.get("/keys", response_model=list[KeyRead])
async def get_keys(principal: AdminDep, people: PeopleDep) -> list[KeyRead]:
    """The tenant's API keys (never the keys themselves: only their prefixes)."""
    return [KeyRead.model_validate(r, from_attributes=True) for r in await people.keys(principal.tenant_id)]


@router.post("/keys", status_code=201, response_model=KeyCreated)
async def create_key(body: KeyCreate, principal: AdminDep, people: PeopleDep) -> KeyCreated:
    """Add an API key (admin keys); the key itself is in this answer only. Without `user_id` or
    `service` it is the caller's own person's; a personal key's role is at most its person's."""
    try:
        key, row = await people.add_key(principal, body.role, body.name, body.user_id, body.service)
    except NotFound:  # an id in the body, not the path: the request is what is wrong
        error = {"loc": ["body", "user_id"], "msg": "no such user in this tenant", "type": "value_error"}
        raise Problem(422, "user_id: no such user in this tenant", errors=[error]) from None
    return KeyCreated(**KeyRead.model_validate(row, from_attributes=True).model_dump(), api_key=key)


@router.delete("/keys/{key_id}", status_code=204)
async def delete_key(key_id: uuid.UUID, principal: AdminDep, people: PeopleDep) -> Response:
    """Revoke one of the tenant's keys; requests with it, and console sessions signed in with it,
    get 401 from then on."""
    if not await people.revoke_key(principal.tenant_id, key_id):
        raise Problem(404, "no such active API key")
    return Response(status_code=204)


@router.get("/users", response_model=list[UserRead])
async def get_users(principal: AdminDep, people: PeopleDep) -> list[UserRead]:
    """The tenant's people."""
    return [UserRead.model_validate(r, from_attributes=True) for r in await people.users(principal.tenant_id)]


@router.post("/users", status_code=201, response_model=UserRead)
async def create_user(body: UserCreate, principal: AdminDep, people: PeopleDep) -> UserRead:
    """Add a person (409 when the tenant has the email already, whatever its case). Give them keys
    with `POST /v1/tenant/keys` and their `user_id`, or let them sign in through the identity provider."""
    row = await people.add_user(principal.tenant_id, body.email, body.name, body.role)
    return UserRead.model_validate(row, from_attributes=True)


@router.patch("/users/{user_id}", response_model=UserRead)
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, principal: AdminDep, people: PeopleDep
) -> UserRead:
    """Change a person's role, name, or whether they are enabled. Disabling revokes their keys and
    ends their console sessions at once; a lower role bounds their keys from the next request."""
    row = await people.update_user(principal, user_id, role=body.role, enabled=body.enabled, name=body.name)
    return UserRead.model_validate(row, from_attributes=True)


@router.delete("/users/{user_id}/sessions", status_code=204)
async def end_user_sessions(user_id: uuid.UUID, principal: AdminDep, people: PeopleDep) -> Response:
    """Sign a person out everywhere: every console session of theirs ends (their keys stay)."""
    await people.sign_out_everywhere(principal.tenant_id, user_id)
    return Response(status_code=204)
