"""The console's cookie: signed, it names a server-side session row (`bulkops.service.sessions`)
and never a key; and the CSRF token derived from it.

The cookie is signed and timestamped by itsdangerous, `HttpOnly` and `SameSite=Strict`. It holds a
random id of its own and, once signed in, the id of the session row; the row is looked up on every
request, so sign-out, sign-out everywhere, a revoked key or a disabled user end the session at the
next request, wherever the cookie was copied to. The CSRF token is an HMAC of the cookie's own id:
every state-changing console request carries it (a form field, or the `X-CSRF-Token` header on
`fetch`), and it changes with that id at sign-in and sign-out.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
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
    # The server-side session row, once signed in.
    session_id: str | None = None


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
        row = data.get("c")
        return ConsoleSession(sid=data["s"], session_id=row if isinstance(row, str) else None)

    def new(self, session_id: uuid.UUID | str | None = None) -> ConsoleSession:
        """A new cookie id (so a new CSRF token): for a visitor, at sign-in (naming the session row
        `SessionService.open` or `PeopleService.sign_in_*` returned) and at sign-out."""
        return ConsoleSession(
            sid=secrets.token_urlsafe(18), session_id=str(session_id) if session_id is not None else None
        )

    def set_cookie(self, request: Request, response: Response, session: ConsoleSession) -> None:
        data = {"s": session.sid, "c": session.session_id} if session.session_id else {"s": session.sid}
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
    """The cookie and its session's principal, while the session is open (`SessionService.resolve`)."""
    session = sessions(request).read(request)
    if session is None or session.session_id is None:
        return None
    principal = await request.app.state.services.sessions.resolve(session.session_id)
    return (session, principal) if principal is not None else None
