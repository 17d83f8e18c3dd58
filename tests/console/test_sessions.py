"""Console sessions live on the server: a cookie copied before sign-out is worth nothing after it;
revoking the key signed in with, or disabling the person, ends the session at the next request (and
the key on the API); sign-out everywhere ends every session of the person; idle and absolute limits.
Over plain HTTP against the app: what a browser would send, cookie and all."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx

from bulkops.domain.people import Role
from bulkops.service.people import PeopleService
from bulkops.service.sessions import SessionService
from tests.console.helpers import csrf_token, sign_in_http
from tests.harness import Harness, Tenant
from tests.safety.keys import key

COOKIE = "bulkops_console"


@contextlib.asynccontextmanager
async def _browser(h: Harness, cookie: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=h.app), base_url="http://console.test"
    ) as web:
        if cookie is not None:
            web.cookies.set(COOKIE, cookie, domain="console.test")
        yield web


async def _signed_in(h: Harness, tenant: Tenant) -> tuple[httpx.AsyncClient, contextlib.AsyncExitStack]:
    stack = contextlib.AsyncExitStack()
    web = await stack.enter_async_context(_browser(h))
    await sign_in_http(web, tenant.api_key)
    return web, stack


async def _works(h: Harness, cookie: str) -> tuple[int, int]:
    """(the API through the cookie, a console page) for a copy of `cookie`."""
    async with _browser(h, cookie) as copy:
        api = (await copy.get("/v1/bulk-operations")).status_code
        page = await copy.get("/console/operations")
    return api, 200 if page.status_code == 200 else page.status_code


async def _sign_out(web: httpx.AsyncClient, everywhere: bool = False) -> None:
    token = csrf_token((await web.get("/console/operations")).text)
    data = {"csrf_token": token, **({"everywhere": "1"} if everywhere else {})}
    assert (await web.post("/console/logout", data=data)).status_code == 303


async def test_a_cookie_copied_before_sign_out_gets_401_after_it(harness: Harness) -> None:
    h = harness
    admin = await h.tenant()
    web, stack = await _signed_in(h, admin)
    async with stack:
        copied = web.cookies[COOKIE]
        assert await _works(h, copied) == (200, 200)
        await _sign_out(web)
        assert await _works(h, copied) == (401, 303)  # 303: to the sign-in page
    assert (await admin.get("/v1/bulk-operations")).status_code == 200  # the key itself lives on


async def test_revoking_the_key_or_disabling_the_person_ends_the_session(harness: Harness) -> None:
    h = harness
    admin = await h.tenant()
    olga = await key(h, admin, Role.OPERATOR, "olga")
    vera = await key(h, admin, Role.VIEWER, "vera")

    # Olga's key is revoked while she is signed in with it.
    web, stack = await _signed_in(h, olga)
    async with stack:
        cookie = web.cookies[COOKIE]
        assert await _works(h, cookie) == (200, 200)
        keys = (await admin.get("/v1/tenant/keys")).json()
        olga_key = next(k for k in keys if k["name"] == "olga")
        assert olga_key["user_id"] and olga_key["service"] is False
        r = await admin.http.delete(
            f"/v1/tenant/keys/{olga_key['id']}", headers={"Authorization": f"Bearer {admin.api_key}"}
        )
        assert r.status_code == 204
        assert await _works(h, cookie) == (401, 303)
        assert (await olga.get("/v1/bulk-operations")).status_code == 401

    # Vera is disabled while signed in: her console session and her key end at once.
    web, stack = await _signed_in(h, vera)
    async with stack:
        cookie = web.cookies[COOKIE]
        assert await _works(h, cookie) == (200, 200)
        assert (await vera.get("/v1/bulk-operations")).status_code == 200
        users = (await admin.get("/v1/tenant/users")).json()
        vera_user = next(u for u in users if u["name"] == "vera")
        r = await admin.http.patch(
            f"/v1/tenant/users/{vera_user['id']}",
            json={"enabled": False},
            headers={"Authorization": f"Bearer {admin.api_key}"},
        )
        assert r.status_code == 200 and r.json()["enabled"] is False, r.text
        assert await _works(h, cookie) == (401, 303)
        assert (await vera.get("/v1/bulk-operations")).status_code == 401
        # And a disabled person cannot sign in again.
        token = csrf_token((await web.get("/console/login")).text)
        again = await web.post("/console/login", data={"api_key": vera.api_key, "csrf_token": token})
        assert again.status_code == 401


async def test_sign_out_everywhere_and_service_keys(harness: Harness) -> None:
    h = harness
    admin = await h.tenant()
    anna = await key(h, admin, Role.APPROVER, "anna")
    laptop, s1 = await _signed_in(h, anna)
    phone, s2 = await _signed_in(h, anna)
    other, s3 = await _signed_in(h, admin)
    async with s1, s2, s3:
        cookies = [c.cookies[COOKIE] for c in (laptop, phone, other)]
        assert [await _works(h, c) for c in cookies] == [(200, 200)] * 3
        await _sign_out(laptop, everywhere=True)
        assert [await _works(h, c) for c in cookies] == [(401, 303), (401, 303), (200, 200)]
        # An admin signs a person out everywhere through the API too.
        phone2, s4 = await _signed_in(h, anna)
        async with s4:
            users = (await admin.get("/v1/tenant/users")).json()
            anna_id = next(u["id"] for u in users if u["name"] == "anna")
            r = await admin.http.delete(
                f"/v1/tenant/users/{anna_id}/sessions", headers={"Authorization": f"Bearer {admin.api_key}"}
            )
            assert r.status_code == 204
            assert await _works(h, phone2.cookies[COOKIE]) == (401, 303)
        assert (await anna.get("/v1/bulk-operations")).status_code == 200  # her keys stay

    # A service key is for scripts: it does not sign in to the console.
    r = await admin.post("/v1/tenant/keys", json={"role": "viewer", "name": "bot", "service": True})
    assert r.status_code == 201 and r.json()["user_id"] is None, r.text
    async with _browser(h) as web:
        token = csrf_token((await web.get("/console/login")).text)
        refused = await web.post("/console/login", data={"api_key": r.json()["api_key"], "csrf_token": token})
        assert refused.status_code == 401 and "service key" in refused.text


async def test_idle_and_absolute_limits(harness: Harness) -> None:
    h = harness
    admin = await h.tenant()
    users = (await admin.get("/v1/tenant/users")).json()
    user_id = uuid.UUID(users[0]["id"])
    # Seconds, not fractions of one: a resolve's round trip on a loaded machine must not pass for idling.
    idle = SessionService(
        h.sessionmaker, h.settings.model_copy(update={"console_session_idle_minutes": 0.05})
    )
    short = SessionService(
        h.sessionmaker, h.settings.model_copy(update={"console_session_hours": 2.5 / 3600})
    )
    a = await idle.open(admin.id, user_id, "oidc")
    b = await short.open(admin.id, user_id, "oidc")
    assert (await idle.resolve(a)) is not None and (await short.resolve(b)) is not None
    await asyncio.sleep(1.5)
    assert await idle.resolve(a) is not None  # 1.5 s idle of 3 s: still on (and seen again now)
    await asyncio.sleep(1.5)
    assert await idle.resolve(a) is not None
    assert await short.resolve(b) is None  # 2.5 s after sign-in, however busy
    await asyncio.sleep(4)
    assert await idle.resolve(a) is None  # 4 s without a request
    # Ending is once: the second end finds nothing to end.
    c = await idle.open(admin.id, user_id, "oidc")
    assert await idle.end(c) is True and await idle.end(c) is False and await idle.resolve(c) is None


async def test_sign_in_from_idp_creates_then_follows_the_person(harness: Harness) -> None:
    h = harness
    admin = await h.tenant()
    services = h.app.state.services
    people: PeopleService = services.people
    issuer = "https://idp.example.test/realms/shop"
    first = await people.sign_in_from_idp(admin.id, issuer, "sub-1", "Nina@Example.test", "Nina", Role.VIEWER)
    principal = await services.sessions.resolve(first)
    assert principal is not None
    assert (principal.user_name, principal.role, principal.method, principal.key_id) == (
        "Nina",
        Role.VIEWER,
        "oidc",
        None,
    )
    # Next sign-in: the same person, with the role the groups map to now.
    second = await people.sign_in_from_idp(
        admin.id, issuer, "sub-1", "nina@example.test", "Nina", Role.APPROVER
    )
    again = await services.sessions.resolve(second)
    assert again is not None and (again.user_id, again.role) == (principal.user_id, Role.APPROVER)
    users = [u for u in (await admin.get("/v1/tenant/users")).json() if u["subject"] == "sub-1"]
    assert len(users) == 1 and users[0]["issuer"] == issuer and users[0]["role"] == "approver"
