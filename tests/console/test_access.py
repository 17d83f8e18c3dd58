"""Who sees and does what: another tenant sees nothing and gets 404s, the session cookie holds no key,
a state-changing request without the session's CSRF token is refused, sign-out ends the session."""

from __future__ import annotations

import hashlib

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.console.helpers import sign_in
from tests.harness import Harness
from tests.support import SlowOrders


# The 404s and the 400 this test asks for, and nothing else.
@pytest.mark.console_errors(r"status of 404 .*/console/operations/", r"status of 400 .*limit=1000")
async def test_another_tenant_sees_nothing_and_gets_404s(harness: Harness, page: Page) -> None:
    first, second = await harness.tenant("first"), await harness.tenant("second")
    ids = await harness.seed(first, 3)
    await harness.start_worker()
    op = await harness.start(first, {"operation_type": "BULK_EXPORT", "order_ids": [str(i) for i in ids]})
    await harness.wait_end(first, op["id"])

    await sign_in(page, second.api_key)
    await expect(page.get_by_text("No operations.")).to_be_visible()
    assert await page.locator("tr[data-op]").count() == 0
    response = await page.goto(f"/console/operations/{op['id']}")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert (await page.goto("/console/operations/not-an-id")).status == 404  # type: ignore[union-attr]
    assert (await page.goto("/console/operations?limit=1000")).status == 400  # type: ignore[union-attr]
    for path in ("", "/items", "/export", "/events"):
        assert (await page.request.get(f"/v1/bulk-operations/{op['id']}{path}")).status == 404
    stream = await page.request.get(f"/console/operations/stream?id={op['id']}")
    assert "event: progress" not in await stream.text() and "event: completed" not in await stream.text()

    # The first tenant sees its operation.
    await page.get_by_role("button", name="Sign out", exact=True).click()
    await page.wait_for_url("**/console/login")
    await sign_in(page, first.api_key)
    await expect(page.locator(f'tr[data-op="{op["id"]}"]')).to_be_visible()


# The sign-in page answers a wrong key with 401 (a console error the test provokes).
@pytest.mark.console_errors(r"status of 401 .*/console/login")
async def test_cookie_csrf_and_sign_out(harness: Harness, context: BrowserContext, page: Page) -> None:
    tenant = await harness.tenant("console")
    ids = await harness.seed(tenant, 3, status="PENDING", paid_at=None)
    # One order a second: the operation runs through the test, so a cancel would be allowed.
    await harness.start_worker(SlowOrders(harness.order_pool, 1.0))
    op = await harness.start(
        tenant, {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids], "max_concurrency": 1}
    )
    await sign_in(page, tenant.api_key)

    (cookie,) = [c for c in await context.cookies() if c["name"] == "bulkops_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    for secret in (tenant.api_key, hashlib.sha256(tenant.api_key.encode()).hexdigest()):
        assert secret not in cookie["value"]
    assert await page.evaluate("document.cookie") == ""

    # The API through the console's cookie: a read works, a change without the token is refused.
    url = f"/v1/bulk-operations/{op['id']}"
    assert (await page.request.get(url)).status == 200
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        refused = await page.request.post(f"{url}/cancel", headers=headers)
        assert refused.status == 403, await refused.text()
        assert "CSRF" in (await refused.json())["detail"]
    # The console's own forms too.
    for path, form in (
        ("/console/logout", {}),
        ("/console/operations/new", {"operation_type": "BULK_CANCEL"}),
    ):
        refused = await page.request.post(path, form={**form, "csrf_token": "forged"})
        assert refused.status == 403
    assert (await tenant.get(url)).json()["status"] != "CANCELLED"
    await page.goto("/console/operations")
    await expect(page.locator(f'tr[data-op="{op["id"]}"]')).to_be_visible()  # still signed in

    # Sign-out ends the session on the server: the console and the API no longer know this browser,
    # nor a copy of its cookie taken before.
    await page.get_by_role("button", name="Sign out", exact=True).click()
    await page.wait_for_url("**/console/login")
    assert (await page.request.get(url)).status == 401
    await context.add_cookies([cookie])  # type: ignore[list-item]
    assert (await page.request.get(url)).status == 401
    await page.goto("/console/operations")
    await page.wait_for_url("**/console/login?next=*")
    # A wrong key is refused on the page.
    await page.get_by_label("API key").fill("bko_not-a-key")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("That API key is not valid.")
