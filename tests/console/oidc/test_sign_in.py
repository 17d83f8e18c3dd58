"""Signing in to the console through a real OpenID provider (oidc-provider, its own login page), in
Chromium: the person lands where they were going, with the role their groups map to, and sees only
that role's buttons; the callback they came back through cannot be used again."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.async_api import Browser, Request, expect
from sqlalchemy import select

from api.console.oidc import PENDING_COOKIE
from bulkops.store.tables import User
from tests.console.helpers import screenshot
from tests.console.oidc.conftest import PROVIDER_NAME, OidcApp, OidcProvider
from tests.harness import Harness
from tests.safety.keys import set_policy
from tests.serving import serve


async def _awaiting_approval(h: Harness) -> tuple[str, str]:
    """A tenant (the app's OIDC tenant from now on) and an operation of it that waits for approval."""
    admin = await h.tenant("oidc")
    h.configure(oidc_tenant=admin.id)
    await set_policy(admin, approval_types=["BULK_CANCEL"])
    ids = await h.seed(admin, 2, status="PENDING", paid_at=None)
    await h.start_worker()
    op = await h.start(
        admin, {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids], "parameters": {}}
    )
    assert op["status"] == "AWAITING_APPROVAL", op
    return admin.id, op["id"]


async def test_a_person_signs_in_at_the_provider_and_gets_their_groups_role(
    oidc_provider: OidcProvider, oidc_app: OidcApp, browser: Browser
) -> None:
    # In two groups: one maps to operator, the other to nothing.
    login = oidc_provider.add_account(f"olga-{uuid.uuid4().hex[:6]}", ["support", "marketing"])
    async with oidc_app(oidc_provider.issuer) as h:
        tenant_id, op_id = await _awaiting_approval(h)
        async with serve(h.app, port=oidc_provider.app_port) as (base, _):
            context = await browser.new_context(base_url=base)
            context.set_default_timeout(20_000)
            # The provider's development login page imports a web font this closed network cannot reach.
            await context.route(
                re.compile(r"^https://fonts\.(googleapis|gstatic)\.com/"), lambda r: r.abort()
            )
            try:
                page = await context.new_page()
                callbacks: list[str] = []

                def seen(request: Request) -> None:
                    if "/console/auth/callback" in request.url:
                        callbacks.append(request.url)

                page.on("request", seen)
                # The console's own pages keep a clean browser console, as in every browser test
                # (the provider's development pages are not ours to judge).
                errors: list[str] = []
                page.on(
                    "console",
                    lambda msg: (
                        errors.append(f"{msg.text} ({msg.location.get('url')})")
                        if msg.type == "error" and str(msg.location.get("url", "")).startswith(base)
                        else None
                    ),
                )
                page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
                await page.goto(f"/console/operations/{op_id}")
                await screenshot(page, "sign-in.png")
                await page.get_by_role("link", name=f"Sign in with {PROVIDER_NAME}").click()

                # The provider's own page, on its own site.
                await page.wait_for_url(f"{oidc_provider.issuer}/**")
                await page.locator("input[name=login]").fill(login)
                await page.locator("input[name=password]").fill("any password will do")
                await page.get_by_role("button", name="Sign-in").click()

                # Back where they were going (through the console's own "Signed in" page: the browser
                # sends the console's SameSite=Strict cookie on no redirect that comes from the provider).
                await page.wait_for_url(f"{base}/console/operations/{op_id}")
                await expect(page.get_by_test_id("role")).to_have_text("operator")
                await expect(page.locator("h1 [data-field=status]")).to_have_text("AWAITING_APPROVAL")
                # An operator's buttons: creating and controlling, not deciding.
                await expect(page.get_by_role("link", name="New operation")).to_be_visible()
                await expect(page.get_by_role("button", name="Cancel")).to_be_visible()
                await expect(page.get_by_role("button", name="Approve")).to_have_count(0)
                await expect(page.get_by_role("button", name="Reject")).to_have_count(0)
                assert not errors, errors

                async with h.sessionmaker() as session:
                    user = (
                        await session.execute(
                            select(User.role, User.subject, User.enabled).where(
                                User.tenant_id == tenant_id, User.email == f"{login}@example.com"
                            )
                        )
                    ).one()
                assert (user.role, user.subject, user.enabled) == ("operator", login, True)

                # The way back in is used up: the same callback again is a clear refusal.
                assert len(callbacks) == 1
                replayed = await page.goto(callbacks[0])
                assert replayed is not None and replayed.status == 400
                await expect(page.get_by_role("alert")).to_contain_text("already completed")
            finally:
                await context.close()


async def test_a_code_used_twice_is_refused_by_the_provider_and_the_state_by_the_console(
    oidc_provider: OidcProvider, oidc_app: OidcApp
) -> None:
    """Without a browser: the provider's login form by hand, then the callback three times — once
    signed in, then refused by the console (its state is spent), then, with the pending cookie copied
    from before, refused by the provider (the code is spent)."""
    login = oidc_provider.add_account(f"rita-{uuid.uuid4().hex[:6]}", ["leads"])
    async with oidc_app(oidc_provider.issuer) as h:
        tenant = await h.tenant("oidc-code")
        h.configure(oidc_tenant=tenant.id)
        async with (
            serve(h.app, port=oidc_provider.app_port) as (base, _),
            httpx.AsyncClient(base_url=base, timeout=10) as web,
        ):
            at = (await web.get("/console/login/oidc")).headers["location"]
            pending = web.cookies.get(PENDING_COOKIE)
            interaction = await web.get(at, follow_redirects=True)
            action = re.search(r'<form[^>]*action="([^"]+)"', interaction.text)
            assert interaction.status_code == 200 and action, interaction.text
            answer = await web.post(
                httpx.URL(str(interaction.url)).join(action[1]),
                data={"prompt": "login", "login": login, "password": "x"},
            )
            while answer.status_code in (302, 303) and not answer.headers["location"].startswith(base):
                answer = await web.get(answer.headers["location"])
            callback = answer.headers["location"]
            assert callback.startswith(f"{base}/console/auth/callback?code="), callback

            signed = await web.get(callback)
            assert signed.status_code == 200 and "Signed in" in signed.text, signed.text
            me = await web.get("/console/operations")
            assert me.status_code == 200 and 'data-testid="role">approver<' in me.text

            again = await web.get(callback)
            assert again.status_code == 400 and "already completed" in again.text

            web.cookies.set(PENDING_COOKIE, pending or "", domain="127.0.0.1", path="/console")
            copied = await web.get(callback)
            assert copied.status_code == 401 and "invalid_grant" in copied.text, copied.text
