"""Refused sign-ins: every way an OpenID Connect callback can be wrong ends on a clear page with a 4xx
status, signs nobody in and creates no user.

The ID tokens here are minted by the test with a key served from a second local issuer's JWKS
(tests/console/oidc/minting.py): an honest provider never sends them. The real provider's own
refusal of a code used twice is in test_sign_in.py."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from joserfc.jwk import RSAKey

from bulkops.devstack.postgres import free_port
from tests.console.oidc.conftest import PROVIDER_NAME, OidcApp
from tests.console.oidc.minting import KID, Authorization, MintingIssuer, minting_issuer
from tests.harness import Harness

Mint = Callable[[MintingIssuer, Authorization], str]
HOUR = 3600


def _honest(issuer: MintingIssuer, auth: Authorization) -> str:
    return issuer.sign(issuer.claims(auth))


CASES: dict[str, tuple[Mint, int, str]] = {
    "wrong audience": (
        lambda i, a: i.sign(i.claims(a, aud="another-application")),
        401,
        "was issued to another application",
    ),
    "expired": (
        lambda i, a: i.sign(i.claims(a, iat=int(time.time()) - 2 * HOUR, exp=int(time.time()) - HOUR)),
        401,
        "has expired",
    ),
    "bad signature": (
        # Another key under the served key's id: found in the JWKS, and the signature fails.
        lambda i, a: i.sign(i.claims(a), RSAKey.generate_key(2048, parameters={"kid": KID})),
        401,
        "the signature does not verify",
    ),
    "another issuer": (
        lambda i, a: i.sign(i.claims(a, iss="https://idp.evil.example")),
        401,
        "was issued by another provider",
    ),
    "another sign-in's nonce": (
        lambda i, a: i.sign(i.claims(a, nonce="a-nonce-of-another-sign-in")),
        401,
        "does not belong to this sign-in",
    ),
    "no group that maps": (
        lambda i, a: i.sign(i.claims(a, groups=["marketing", "everyone"])),
        403,
        "None of your groups at Test IdP gives access",
    ),
}


async def _start(h: Harness) -> str:
    started = await h.http.get("/console/login/oidc", params={"next": "/console/approvals"})
    assert started.status_code == 302, started.text
    return started.headers["location"]


async def _signed_in(web: httpx.AsyncClient) -> bool:
    return (await web.get("/console/operations")).status_code == 200


async def _refused(answer: httpx.Response, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert words in answer.text, answer.text
    assert 'href="/console/login"' in answer.text  # the way back to try again


@pytest.mark.parametrize("case", list(CASES))
async def test_a_bad_id_token_is_refused_with_a_clear_page(oidc_app: OidcApp, case: str) -> None:
    mint, status, words = CASES[case]
    async with minting_issuer() as issuer, oidc_app(issuer.url) as h:
        tenant = await h.tenant("oidc-bad")
        h.configure(oidc_tenant=tenant.id)
        issuer.mint = lambda auth: mint(issuer, auth)
        auth = issuer.authorized(await _start(h), "code-1")
        answer = await h.http.get("/console/auth/callback", params={"code": "code-1", "state": auth.state})
        await _refused(answer, status, words)
        assert issuer.verifier_checked  # the refusal is the token's, after a correct PKCE exchange
        assert not await _signed_in(h.http)
        assert (
            await h.scalar(
                "SELECT count(*) FROM users WHERE tenant_id = :t AND email LIKE 'mallory%'", t=tenant.id
            )
            == 0
        )


async def test_the_authorization_request_carries_pkce_state_and_nonce(oidc_app: OidcApp) -> None:
    async with minting_issuer() as issuer, oidc_app(issuer.url) as h:
        # Two sign-ins started, two flows: nothing is reused between them.
        a = Authorization.from_redirect(await _start(h))
        b = Authorization.from_redirect(await _start(h))
    assert a.code_challenge_method == "S256" and len(a.code_challenge) == 43
    assert a.redirect_uri == "http://bulkops.test/console/auth/callback"
    assert len({a.state, b.state}) == 2 and len({a.nonce, b.nonce}) == 2
    assert len({a.code_challenge, b.code_challenge}) == 2


async def test_the_providers_own_refusal_and_a_replayed_state_are_clear_pages(oidc_app: OidcApp) -> None:
    async with minting_issuer() as issuer, oidc_app(issuer.url) as h:
        tenant = await h.tenant("oidc-replay")
        h.configure(oidc_tenant=tenant.id)
        issuer.mint = lambda auth: _honest(issuer, auth)

        # The person cancelled at the provider (or it refused them): its error, in words.
        auth = Authorization.from_redirect(await _start(h))
        denied = await h.http.get(
            "/console/auth/callback",
            params={"error": "access_denied", "error_description": "The user cancelled", "state": auth.state},
        )
        await _refused(
            denied, 401, f"{PROVIDER_NAME} refused the sign-in (access_denied: The user cancelled)"
        )

        # A callback with no state, or one this browser never started.
        await _refused(await h.http.get("/console/auth/callback", params={"code": "x"}), 400, "Start again")
        await _refused(
            await h.http.get("/console/auth/callback", params={"code": "x", "state": "forged"}),
            400,
            "Start again",
        )

        # The honest sign-in goes through once; the same callback again is refused.
        auth = issuer.authorized(await _start(h), "code-2")
        callback = {"code": "code-2", "state": auth.state}
        signed = await h.http.get("/console/auth/callback", params=callback)
        assert signed.status_code in (200, 303), signed.text
        assert await _signed_in(h.http)
        replayed = await h.http.get("/console/auth/callback", params=callback)
        await _refused(replayed, 400, "This sign-in was already completed, has expired")


async def test_the_tenant_from_a_claim_and_an_unknown_one_refused(oidc_app: OidcApp) -> None:
    async with minting_issuer() as issuer, oidc_app(issuer.url) as h:
        tenant = await h.tenant("oidc-claim")
        h.configure(oidc_tenant=None, oidc_tenant_claim="bulkops_tenant")
        named = "no-such-tenant"
        issuer.mint = lambda auth: issuer.sign(issuer.claims(auth, bulkops_tenant=named, groups=["leads"]))

        auth = issuer.authorized(await _start(h), "code-1")
        answer = await h.http.get("/console/auth/callback", params={"code": "code-1", "state": auth.state})
        await _refused(answer, 403, "There is no bulkops tenant &#39;no-such-tenant&#39;")

        named = tenant.id
        auth = issuer.authorized(await _start(h), "code-2")
        answer = await h.http.get("/console/auth/callback", params={"code": "code-2", "state": auth.state})
        assert answer.status_code == 200, answer.text
        assert 'url=/console/approvals"' in answer.text  # on to where the sign-in started from
        me = await h.http.get("/console/approvals")
        assert me.status_code == 200 and 'data-testid="role">approver<' in me.text
        assert (
            await h.scalar(
                "SELECT role FROM users WHERE tenant_id = :t AND subject = 'mallory-sub'", t=tenant.id
            )
            == "approver"
        )


async def test_key_sign_in_can_be_turned_off(oidc_app: OidcApp) -> None:
    async with minting_issuer() as issuer, oidc_app(issuer.url, BULKOPS_CONSOLE_KEY_SIGNIN=False) as h:
        tenant = await h.tenant("oidc-nokey")
        form = await h.http.get("/console/login")
        assert f"Sign in with {PROVIDER_NAME}" in form.text and 'name="api_key"' not in form.text
        posted = await h.http.post("/console/login", data={"api_key": tenant.api_key, "csrf_token": "x"})
        assert posted.status_code == 403 and "turned off" in posted.text
        assert not await _signed_in(h.http)
        # The API itself still takes the key.
        assert (await tenant.get("/v1/bulk-operations")).status_code == 200


async def test_a_provider_that_cannot_be_reached_is_a_page_not_a_500(oidc_app: OidcApp) -> None:
    async with oidc_app(f"http://127.0.0.1:{free_port()}") as h:
        answer = await h.http.get("/console/login/oidc")
        assert answer.status_code == 502 and f"{PROVIDER_NAME} could not be reached" in answer.text
        assert answer.headers["content-type"].startswith("text/html")
