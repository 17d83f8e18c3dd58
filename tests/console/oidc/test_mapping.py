"""From a verified ID token's claims to a tenant and a role (bulkops.service.identity), without a
provider: the highest mapped role wins, the email falls back to Entra's claims, refusals say why."""

from __future__ import annotations

import re

import pytest

from bulkops.domain.people import Role
from bulkops.service.identity import SignInRefused, identity_from_claims
from bulkops.settings import Settings

SETTINGS = Settings(
    BULKOPS_OIDC_ISSUER="https://login.example.com/t/v2.0",
    BULKOPS_OIDC_CLIENT_ID="c",
    BULKOPS_OIDC_CLIENT_SECRET="s",
    BULKOPS_OIDC_TENANT_CLAIM="shop",
    BULKOPS_OIDC_GROUP_ROLES={"support": "operator", "leads": "approver", "ops": "viewer"},
)


def test_the_highest_mapped_role_and_the_email_from_upn() -> None:
    who = identity_from_claims(
        SETTINGS, {"sub": "s1", "upn": "Anna@Example.com", "shop": "acme", "groups": ["ops", "leads", "x"]}
    )
    assert (who.tenant_id, who.role, who.email, who.name) == (
        "acme",
        Role.APPROVER,
        "anna@example.com",
        "Anna@Example.com",
    )
    assert who.issuer == "https://login.example.com/t/v2.0" and who.subject == "s1"


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({"sub": "s", "email": "a@x.com", "shop": "acme", "groups": "marketing"}, "None of your groups"),
        ({"sub": "s", "email": "a@x.com", "groups": ["support"]}, "names no bulkops tenant (claim shop)"),
        (
            {"sub": "s", "email": "a@x.com", "email_verified": False, "shop": "acme", "groups": ["support"]},
            "not verified",
        ),
        (
            {"sub": "s", "preferred_username": "anna", "shop": "acme", "groups": ["support"]},
            "did not send your email",
        ),
    ],
)
def test_refusals_say_why(claims: dict[str, object], words: str) -> None:
    with pytest.raises(SignInRefused, match=re.escape(words)):
        identity_from_claims(SETTINGS, claims)


def test_settings_refuse_a_half_configured_issuer() -> None:
    with pytest.raises(ValueError, match="exactly one of BULKOPS_OIDC_TENANT"):
        Settings(
            BULKOPS_OIDC_ISSUER="https://i",
            BULKOPS_OIDC_CLIENT_ID="c",
            BULKOPS_OIDC_CLIENT_SECRET="s",
            BULKOPS_OIDC_GROUP_ROLES={"a": "admin"},
        )
    with pytest.raises(ValueError, match="BULKOPS_OIDC_CLIENT_SECRET must be too"):
        Settings(
            BULKOPS_OIDC_ISSUER="https://i",
            BULKOPS_OIDC_CLIENT_ID="c",
            BULKOPS_OIDC_TENANT="t",
            BULKOPS_OIDC_GROUP_ROLES={"a": "admin"},
        )
