"""Who a verified OpenID Connect ID token says the person is, in bulkops' terms: the tenant they
sign in to and the role their groups give them.

The ID token has been checked (signature, issuer, audience, expiry, nonce) before its claims get
here; this only maps them. The group → role map is a setting (BULKOPS_OIDC_GROUP_ROLES), beside the
issuer and the client secret: it names the identity provider's groups, which whoever registers the
app there knows, and it must not be something a tenant admin edits through the API (a policy field
would let an admin key hand out roles to whole groups of the company's directory).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select

from bulkops.domain.people import Role
from bulkops.service.errors import Conflict, Forbidden
from bulkops.service.people import PeopleService
from bulkops.settings import Settings
from bulkops.store.tables import Tenant

# Where an email address may be, in the order tried (Entra ID sends `preferred_username` or `upn`
# when the `email` optional claim is not configured).
EMAIL_CLAIMS = ("email", "preferred_username", "upn")


class SignInRefused(Exception):
    """A person the identity provider vouches for who may not sign in here (403); the message is for
    them to read."""


@dataclass(frozen=True)
class IdpIdentity:
    tenant_id: str
    issuer: str
    subject: str
    email: str
    name: str
    role: Role
    groups: tuple[str, ...]


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable) and not isinstance(value, Mapping | bytes):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def role_for_groups(group_roles: Mapping[str, Role], groups: Iterable[str]) -> Role | None:
    """The highest role any of the groups maps to; None when none maps."""
    best: Role | None = None
    for role in (group_roles[g] for g in groups if g in group_roles):
        best = role if best is None or role.allows(best) else best
    return best


def identity_from_claims(settings: Settings, claims: Mapping[str, object]) -> IdpIdentity:
    provider = provider_name(settings)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise SignInRefused(f"{provider} did not say who you are (the ID token has no subject).")
    if claims.get("email_verified") is False:
        # Email is how an admin's pre-created user is found: an unverified one could be anyone's.
        raise SignInRefused(f"{provider} has not verified your email address; verify it there first.")
    email = next((v for c in EMAIL_CLAIMS if isinstance(v := claims.get(c), str) and "@" in v), None)
    if email is None:
        raise SignInRefused(
            f"{provider} did not send your email address (claim {' or '.join(EMAIL_CLAIMS)})."
        )
    tenant = settings.oidc_tenant
    if settings.oidc_tenant_claim:
        value = claims.get(settings.oidc_tenant_claim)
        tenant = value if isinstance(value, str) and value else None
    if not tenant:
        raise SignInRefused(
            f"Your account at {provider} names no bulkops tenant (claim {settings.oidc_tenant_claim})."
        )
    groups = _strings(claims.get(settings.oidc_groups_claim))
    # Unmapped means refused, not a viewer: an account at the company's identity provider is not by
    # itself a reason to see every tenant's operations; membership of a mapped group is.
    role = role_for_groups(settings.oidc_group_roles, groups)
    if role is None:
        raise SignInRefused(
            f"None of your groups at {provider} gives access to this bulkops console. Ask your "
            "administrator to add you to one of the groups that does."
        )
    name = claims.get("name")
    return IdpIdentity(
        tenant_id=tenant,
        issuer=settings.oidc_issuer or "",
        subject=subject,
        email=email.lower(),
        name=name if isinstance(name, str) and name.strip() else email,
        role=role,
        groups=groups,
    )


def provider_name(settings: Settings) -> str:
    """What the console calls the identity provider ("Sign in with …")."""
    if settings.oidc_provider_name:
        return settings.oidc_provider_name
    host = (settings.oidc_issuer or "").split("://", 1)[-1].split("/", 1)[0]
    return host or "your identity provider"


async def sign_in(people: PeopleService, settings: Settings, claims: Mapping[str, object]) -> uuid.UUID:
    """A console session for the person a verified ID token names (its id); `SignInRefused` with the
    reason when they may not sign in: no group that maps, an unknown tenant, a disabled user, an
    email already bound to another identity."""
    identity = identity_from_claims(settings, claims)
    async with people.sessionmaker() as session:
        known = await session.scalar(select(Tenant.id).where(Tenant.id == identity.tenant_id))
    if known is None:
        raise SignInRefused(f"There is no bulkops tenant {identity.tenant_id!r} for your account.")
    try:
        return await people.sign_in_from_idp(
            identity.tenant_id,
            identity.issuer,
            identity.subject,
            identity.email,
            identity.name,
            identity.role,
        )
    except (Forbidden, Conflict) as exc:
        raise SignInRefused(f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from exc
