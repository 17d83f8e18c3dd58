"""The console's session: a signed cookie that names the API key by its id (never the key), and the
CSRF token derived from it.

The cookie is signed and timestamped by itsdangerous, `HttpOnly` and `SameSite=Strict`. It holds a
random session id and, once signed in, the id of the key row; the principal is looked up on every
request, so a revoked key ends its sessions at once. The CSRF token is an HMAC of the session id:
every state-changing console request carries it (a form field, or the `X-CSRF-Token` header on
`fetch`), and it changes with the session id at sign-in and sign-out.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from bulkops.service.auth import Principal
from bulkops.settings import Settings

log = logging.getLogger(__name__)

COOKIE = "bulkops_console"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class ConsoleSession:
    sid: str
    key_id: str | None = None


class Sessions:
    def __init__(self, settings: Settings) -> None:
        secret = settings.console_secret.get_secret_value() if settings.console_secret else ""
        if not secret:
            log.info("BULKOPS_CONSOLE_SECRET is not set: console sessions end when this process stops")
            secret = secrets.token_urlsafe(32)
        self._serializer = URLSafeTimedSerializer(secret, salt="bulkops.console.session")
        self._secret = secret
        self._csrf_key = hashlib.sha256(f"bulkops.console.csrf:{secret}".encode()).digest()
        self.max_age_s = int(settings.console_session_hours * 3600)

    def derived_secret(self, purpose: str) -> str:
        """A secret of its own for another signed cookie of the console (the pending OIDC sign-in)."""
        return hashlib.sha256(f"bulkops.console.{purpose}:{self._secret}".encode()).hexdigest()

    def read(self, request: Request) -> ConsoleSession | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=self.max_age_s)
        except BadSignature:  # also an expired one (SignatureExpired is a BadSignature)
            return None
        if not isinstance(data, dict) or not isinstance(data.get("s"), str):
            return None
        key_id = data.get("k")
        return ConsoleSession(sid=data["s"], key_id=key_id if isinstance(key_id, str) else None)

    def new(self, key_id: str | None = None) -> ConsoleSession:
        """A new session id (so a new CSRF token): for a visitor, at sign-in and at sign-out."""
        return ConsoleSession(sid=secrets.token_urlsafe(18), key_id=key_id)

    def set_cookie(self, request: Request, response: Response, session: ConsoleSession) -> None:
        data = {"s": session.sid, "k": session.key_id} if session.key_id else {"s": session.sid}
        response.set_cookie(
            COOKIE,
            self._serializer.dumps(data),
            max_age=self.max_age_s,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def csrf_token(self, session: ConsoleSession) -> str:
        return hmac.new(self._csrf_key, session.sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: ConsoleSession, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(session), token or "")


def sessions(request: Request) -> Sessions:
    return request.app.state.console_sessions  # type: ignore[no-any-return]


async def signed_in(request: Request) -> tuple[ConsoleSession, Principal] | None:
    """The session and its key's principal, when the cookie names a key that is still valid."""
    session = sessions(request).read(request)
    if session is None or session.key_id is None:
        return None
    principal = await request.app.state.services.principal_for_key_id(session.key_id)
    return (session, principal) if principal is not None else None
