"""Signing in to the console through the company's identity provider: an OpenID Connect relying party
on Authlib's Starlette client.

Authorization code flow with PKCE (S256), `state` and `nonce`; the provider's endpoints and keys come
from its discovery document and JWKS. The ID token is checked by Authlib (signature against the
provider's keys, `iss`, `aud`, `exp`, `nonce`) with the issuer and audience pinned here. `state`,
`nonce` and the PKCE verifier wait in a short-lived signed cookie of their own (SameSite=Lax: the
provider's redirect back is a cross-site navigation, on which the console's Strict cookie is not
sent); the callback consumes them, so a second use of the same callback is refused, and a code
used twice is refused by the provider.

Every refusal is a page with a 4xx status that says what went wrong: the provider's own error,
an ID token that does not verify, a stale or replayed `state`, a person none of whose groups maps
to a role.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.base_client.errors import MismatchingStateError
from authlib.integrations.starlette_client import OAuth, OAuthError, StarletteOAuth2App
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from joserfc.errors import BadSignatureError, ClaimError, ExpiredTokenError, JoseError
from starlette.middleware.sessions import SessionMiddleware

from api.console.render import page, safe_next
from api.session import sessions
from bulkops.service.identity import SignInRefused, provider_name, sign_in
from bulkops.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/console", include_in_schema=False)

CALLBACK_PATH = "/console/auth/callback"
PENDING_COOKIE = "bulkops_oidc"
# How long a started sign-in may take at the provider (login page, MFA) before its state expires.
PENDING_S = 600
# Clock skew allowed on `exp`, `iat` and `nbf`.
LEEWAY_S = 60
NEXT_KEY = "bulkops_next"
CLAIM_WORDS = {
    "aud": "was issued to another application (its audience is not this console's client id)",
    "iss": "was issued by another provider (its issuer is not the configured one)",
    "nonce": "does not belong to this sign-in (its nonce does not match)",
    "azp": "was issued to another application (its authorized party is not this console)",
}


class SignInFailed(Exception):
    """A sign-in that ends on the console's error page, with this status, title and explanation."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


@dataclass
class OidcClient:
    settings: Settings
    app: StarletteOAuth2App

    @classmethod
    def build(cls, settings: Settings) -> OidcClient:
        issuer = (settings.oidc_issuer or "").rstrip("/")
        secret = settings.oidc_client_secret
        oauth = OAuth()
        client = oauth.register(
            "idp",
            client_id=settings.oidc_client_id,
            client_secret=secret.get_secret_value() if secret else None,
            server_metadata_url=f"{issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256", "timeout": 10.0},
        )
        assert isinstance(client, StarletteOAuth2App)
        return cls(settings, client)

    @property
    def name(self) -> str:
        return provider_name(self.settings)

    @property
    def issuer(self) -> str:
        return (self.settings.oidc_issuer or "").rstrip("/")

    async def metadata(self) -> dict[str, Any]:
        try:
            found: dict[str, Any] = await self.app.load_server_metadata()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("OIDC discovery at %s failed: %r", self.issuer, exc)
            raise SignInFailed(
                502, "Sign-in unavailable", f"{self.name} could not be reached. Try again in a moment."
            ) from exc
        # A discovery document naming another issuer is not this provider's (OpenID Discovery §4.3).
        if str(found.get("issuer", "")).rstrip("/") != self.issuer:
            self.app.server_metadata.clear()
            log.error("OIDC discovery at %s names issuer %r", self.issuer, found.get("issuer"))
            raise SignInFailed(502, "Sign-in unavailable", f"{self.name} is not configured correctly.")
        return found

    def claims_options(self, metadata: dict[str, Any]) -> dict[str, Any]:
        # Authlib checks `aud` only when told to. The issuer is the discovery document's, which
        # `metadata()` has checked against the configured one (spelt as the provider spells it).
        return {
            "iss": {"essential": True, "value": metadata["issuer"]},
            "aud": {"essential": True, "value": self.settings.oidc_client_id},
        }


def redirect_uri(request: Request, settings: Settings) -> str:
    """The callback URL to register at the provider: under BULKOPS_PUBLIC_API_URL when set (behind a
    proxy the request's own scheme and host may not be the public ones)."""
    if settings.public_api_url:
        return settings.public_api_url.rstrip("/") + CALLBACK_PATH
    return str(request.base_url).rstrip("/") + CALLBACK_PATH


def install(app: FastAPI, settings: Settings, secret: str) -> None:
    """Sign-in through the issuer in BULKOPS_OIDC_ISSUER (nothing when it is unset); `secret` signs
    the pending sign-in's cookie."""
    if not settings.oidc_enabled:
        app.state.console_oidc = None
        return
    app.state.console_oidc = OidcClient.build(settings)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=PENDING_COOKIE,
        max_age=PENDING_S,
        path="/console",
        same_site="lax",
        https_only=(settings.public_api_url or "").startswith("https://"),
    )
    app.include_router(router)


def oidc(request: Request) -> OidcClient | None:
    return request.app.state.console_oidc  # type: ignore[no-any-return]


def failed_page(request: Request, failure: SignInFailed) -> HTMLResponse:
    return page(
        request,
        "error.html",
        None,
        status_code=failure.status,
        title=failure.title,
        detail=failure.detail,
        retry_url="/console/login",
        retry_label="Back to sign-in",
    )


def _token_refusal(client: OidcClient, exc: JoseError) -> SignInFailed:
    if isinstance(exc, ExpiredTokenError):
        why = "has expired"
    elif isinstance(exc, BadSignatureError):
        why = "is not signed by any of its keys (the signature does not verify)"
    elif isinstance(exc, ClaimError):
        why = CLAIM_WORDS.get(exc.claim, f"has a wrong or missing “{exc.claim}” claim")
    else:
        why = f"could not be read ({exc.error or type(exc).__name__})"
    detail = f"The ID token from {client.name} {why}. Nothing was signed in."
    return SignInFailed(401, "Sign-in refused", detail)


async def start(request: Request, client: OidcClient, next_path: str) -> Response:
    await client.metadata()
    request.session[NEXT_KEY] = next_path
    response: Response = await client.app.authorize_redirect(request, redirect_uri(request, client.settings))
    return response


async def verified_claims(request: Request, client: OidcClient) -> dict[str, Any]:
    """The callback's ID token claims once every check has passed; SignInFailed otherwise."""
    metadata = await client.metadata()
    iss = request.query_params.get("iss")
    if iss is not None and iss.rstrip("/") != client.issuer:
        # RFC 9207: an answer that names another issuer is a mix-up, whoever sent it.
        raise SignInFailed(400, "Sign-in refused", "This answer did not come from the configured provider.")
    try:
        token = await client.app.authorize_access_token(
            request, claims_options=client.claims_options(metadata), leeway=LEEWAY_S
        )
    except MismatchingStateError as exc:
        raise SignInFailed(
            400,
            "Sign-in link expired",
            "This sign-in was already completed, has expired, or was started in another browser. "
            "Start again from the sign-in page.",
        ) from exc
    except OAuthError as exc:
        log.info("OIDC sign-in refused by the provider: %s %s", exc.error, exc.description)
        said = f"{exc.error}: {exc.description}" if exc.description else str(exc.error or "refused")
        raise SignInFailed(401, "Sign-in refused", f"{client.name} refused the sign-in ({said}).") from exc
    except JoseError as exc:
        log.warning("OIDC ID token refused: %r", exc)
        raise _token_refusal(client, exc) from exc
    except httpx.HTTPError as exc:
        log.warning("OIDC token exchange with %s failed: %r", client.issuer, exc)
        raise SignInFailed(
            502, "Sign-in unavailable", f"{client.name} could not be reached. Try again in a moment."
        ) from exc
    claims = token.get("userinfo")
    if not claims:
        raise SignInFailed(401, "Sign-in refused", f"{client.name} sent no ID token. Nothing was signed in.")
    return dict(claims)


@router.get("/login/oidc")
async def login_oidc(request: Request, next: str = "") -> Response:
    client = oidc(request)
    assert client is not None  # the router is mounted only when it is configured
    try:
        return await start(request, client, safe_next(next))
    except SignInFailed as failure:
        return failed_page(request, failure)


@router.get("/auth/callback", name="oidc_callback")
async def callback(request: Request) -> Response:
    client = oidc(request)
    assert client is not None
    next_path = safe_next(request.session.pop(NEXT_KEY, None))
    try:
        claims = await verified_claims(request, client)
    except SignInFailed as failure:
        return failed_page(request, failure)
    services = request.app.state.services
    try:
        session_id = await sign_in(services.people, services.settings, claims)
    except SignInRefused as refused:
        log.info("OIDC sign-in of %s refused: %s", claims.get("sub"), refused)
        return failed_page(request, SignInFailed(403, "Not allowed", str(refused)))
    store = sessions(request)
    # A page that moves on by itself, not a redirect: this request came from the provider's site, and
    # the browser sends no SameSite=Strict cookie on a redirect it follows from here; a navigation
    # this page starts is the console's own.
    response = page(request, "signed_in.html", None, next=next_path, person=claims.get("name") or "")
    # A new cookie id at sign-in, as with a key.
    store.set_cookie(request, response, store.new(session_id))
    return response
