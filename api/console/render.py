"""Templates, their filters, and what every console page needs: the signed-in principal and CSRF."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.session import CSRF_FIELD, ConsoleSession, sessions, signed_in
from bulkops.domain.people import Role
from bulkops.service.auth import Principal

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

# Every asset is served by the app itself: nothing from another origin, no inline script or style.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m {s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m"


_FILTER_WORDS = {
    "statuses": lambda v: "status " + " or ".join(v),
    "created_from": lambda v: f"created from {v}",
    "created_to": lambda v: f"created before {v}",
    "tags_any": lambda v: "tagged " + " or ".join(v),
    "customer_email": lambda v: f"customer {v}",
}


def _selection(selection: dict[str, Any]) -> str:
    """An operation's `selection` in words (the page links a retry's or revert's original itself)."""
    if "order_ids_count" in selection:
        n = selection["order_ids_count"]
        return f"{n:,} order{'s' if n != 1 else ''}, by id"
    if "filter" in selection:
        parts = [
            _FILTER_WORDS[k](v) if k in _FILTER_WORDS else f"{k} {v}" for k, v in selection["filter"].items()
        ]
        return "orders " + ", ".join(parts) if parts else "every order of the tenant"
    if "retry_of" in selection:
        which = "every failed order" if selection.get("all_failed") else "the retryable failed orders"
        return f"{which} of the original"
    if "revert_of" in selection:
        return "the orders the original update changed"
    return "; ".join(f"{k}: {v}" for k, v in selection.items()) or "—"


def _detail(detail: dict[str, Any]) -> str:
    """An audit event's detail without empty values."""
    shown = {k: v for k, v in sorted(detail.items()) if v is not None and v != [] and v != {}}
    return "; ".join(f"{k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in shown.items())


def _asset_versions() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:10] for p in STATIC.iterdir() if p.is_file()}


_VERSIONS = _asset_versions()
env = templates.env
env.filters["num"] = lambda n: "—" if n is None else f"{n:,}"
env.filters["pct"] = lambda x: f"{x:.1f}"
env.filters["rate"] = lambda x: "—" if x is None else f"{x:.1f}"
env.filters["duration"] = _duration
env.filters["ts"] = lambda dt: dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
env.filters["selection"] = _selection
env.filters["detail"] = _detail
env.filters["money"] = lambda cents: "—" if cents is None else f"{cents / 100:,.2f}"
env.globals["static"] = lambda name: f"/console/static/{name}?v={_VERSIONS.get(name, '0')}"


# The least role each kind of button is shown to (the routes behind them name theirs in api.deps).
OFFERED_TO = {"create": Role.OPERATOR, "control": Role.OPERATOR, "approve": Role.APPROVER}


@dataclass(frozen=True)
class Console:
    """The signed-in visitor of a console page."""

    session: ConsoleSession
    principal: Principal
    csrf: str

    def may(self, action: str) -> bool:
        """Whether to offer an action to this key's role. Only a hint for what to show: the API's
        routes check the role (403) whatever the page showed."""
        return self.principal.may(OFFERED_TO[action])


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRejected(Exception):
    pass


async def _console(request: Request) -> Console:
    found = await signed_in(request)
    if found is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(path)
    session, principal = found
    return Console(session, principal, sessions(request).csrf_token(session))


ConsoleDep = Annotated[Console, Depends(_console)]


async def checked_form(request: Request, console: Console) -> Any:
    """The posted form, once its CSRF token is the session's."""
    form = await request.form()
    token = form.get(CSRF_FIELD)
    if not sessions(request).csrf_ok(console.session, token if isinstance(token, str) else None):
        raise CsrfRejected
    return form


def safe_next(path: object) -> str:
    # Only a path inside the console: never an open redirect to another site.
    if isinstance(path, str) and path.startswith("/console") and not path.startswith("//"):
        return path
    return "/console/operations"


def sign_in_url(next_path: str) -> str:
    return f"/console/login?next={quote(next_path, safe='')}"


def page(
    request: Request,
    name: str,
    console: Console | None,
    *,
    status_code: int = 200,
    csrf: str = "",
    **context: Any,
) -> HTMLResponse:
    base = {
        "principal": console.principal if console else None,
        "csrf": console.csrf if console else csrf,
        "may": console.may if console else (lambda _action: False),
        "role": console.principal.role.value if console else None,
        "key_name": console.principal.key_name if console else None,
        "now": datetime.now(UTC),
    }
    response = templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response
