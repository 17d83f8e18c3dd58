"""A second, local issuer for the bad-token cases: its discovery document, its JWKS (one RSA key
the test holds), and a token endpoint that answers whatever ID token the test minted, so that the
console's callback is driven with tokens no honest provider would send (wrong audience, expired,
signed by another key). It checks the PKCE verifier against the challenge it was shown, as a provider
does; it never shows a login page (the test reads `state` and `nonce` off the console's redirect)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.serving import serve

KID = "minting-key"
Claims = dict[str, Any]


@dataclass
class Authorization:
    """What the console's redirect to the authorization endpoint carried."""

    state: str
    nonce: str
    code_challenge: str
    code_challenge_method: str
    client_id: str
    redirect_uri: str

    @classmethod
    def from_redirect(cls, location: str) -> Authorization:
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        return cls(
            query["state"],
            query["nonce"],
            query["code_challenge"],
            query["code_challenge_method"],
            query["client_id"],
            query["redirect_uri"],
        )


@dataclass
class MintingIssuer:
    url: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": KID}))
    # What the next token request gets, given the authorization it answers.
    mint: Callable[[Authorization], str] | None = None
    authorizations: dict[str, Authorization] = field(default_factory=dict)
    verifier_checked: bool = False

    def claims(self, auth: Authorization, **over: Any) -> Claims:
        """An honest ID token's claims for this authorization; `over` changes or (None) drops some."""
        now = int(time.time())
        base: Claims = {
            "iss": self.url,
            "sub": "mallory-sub",
            "aud": auth.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": auth.nonce,
            "email": "mallory@example.com",
            "name": "Mallory",
            "groups": ["support"],
        }
        base.update(over)
        return {k: v for k, v in base.items() if v is not None}

    def sign(self, claims: Claims, key: RSAKey | None = None) -> str:
        return jwt.encode({"alg": "RS256", "kid": KID}, claims, key or self.key)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/auth",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            return {"keys": [self.key.as_dict(private=False, alg="RS256", use="sig")]}

        @app.post("/token")
        async def token(
            request: Request, code: str = Form(), code_verifier: str = Form(), redirect_uri: str = Form()
        ) -> JSONResponse:
            auth = self.authorizations.get(code)
            if auth is None or request.headers.get("authorization", "")[:6].lower() != "basic ":
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            digest = hashlib.sha256(code_verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if challenge != auth.code_challenge or redirect_uri != auth.redirect_uri:
                return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
            self.verifier_checked = True
            assert self.mint is not None
            return JSONResponse(
                {
                    "access_token": "opaque",
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": self.mint(auth),
                }
            )

        return app

    def authorized(self, location: str, code: str) -> Authorization:
        """The console sent the browser to `location`; the provider will answer `code` for it."""
        auth = Authorization.from_redirect(location)
        self.authorizations[code] = auth
        return auth


@contextlib.asynccontextmanager
async def minting_issuer() -> AsyncIterator[MintingIssuer]:
    issuer = MintingIssuer()
    async with serve(issuer.app()) as (base, _):
        issuer.url = base
        yield issuer
