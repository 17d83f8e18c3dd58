"""Roles in the console: a viewer is offered nothing and refused (403) when it posts anyway; four-eyes
approval from the form to the approvals page; revert of an update (and the 409 of a second one)."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from bulkops.domain.people import Role
from tests.console.helpers import screenshot, sign_in
from tests.harness import Harness
from tests.safety.keys import key, set_policy
from tests.support import SlowOrders

OPERATION_PAGE = re.compile(r".*/console/operations/[0-9a-f-]{36}$")


@pytest.mark.console_errors(r"status of 403 .*/console/operations/new")
async def test_a_viewer_sees_no_action_and_is_refused_when_it_posts(harness: Harness, page: Page) -> None:
    admin = await harness.tenant("roles")
    viewer = await key(harness, admin, Role.VIEWER, "vera")
    ids = await harness.seed(admin, 3, status="PENDING", paid_at=None)
    await harness.start_worker(SlowOrders(harness.order_pool, 1.0))
    op = await harness.start(
        admin, {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids], "max_concurrency": 1}
    )

    await sign_in(page, viewer.api_key)
    await expect(page.get_by_test_id("role")).to_have_text("viewer")
    await expect(page.get_by_role("link", name="New operation")).to_have_count(0)
    await page.goto(f"/console/operations/{op['id']}")
    await expect(page.locator("h1 [data-field=status]")).to_have_text(re.compile("PENDING|PROCESSING"))
    await expect(page.locator("button[data-action]")).to_have_count(0)

    # Posting anyway, with the session's own CSRF token: the API's role check answers.
    csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    refused = await page.request.post(
        f"/v1/bulk-operations/{op['id']}/cancel", headers={"X-CSRF-Token": csrf or ""}
    )
    assert refused.status == 403 and "role operator" in (await refused.json())["detail"]
    assert (await page.goto("/console/operations/new")).status == 403  # type: ignore[union-attr]
    assert (await admin.get(f"/v1/bulk-operations/{op['id']}")).json()["status"] != "CANCELLED"


@pytest.mark.console_errors(r"status of 403 .*/approve")  # the creator's own try, refused
async def test_four_eyes_approval_from_the_form_to_the_approvals_page(
    harness: Harness, browser: Browser, console_url: str, page: Page
) -> None:
    admin = await harness.tenant("approve")
    alice = await key(harness, admin, Role.APPROVER, "alice")
    bob = await key(harness, admin, Role.APPROVER, "bob")
    await set_policy(admin, approval_types=["BULK_REFUND"])
    await harness.seed(admin, 4, status="PAID")  # 1000 + 1010 + 1020 + 1030 cents
    await harness.start_worker()

    await sign_in(page, alice.api_key)
    await page.goto("/console/operations/new")
    await page.get_by_label("Operation type").select_option("BULK_REFUND")
    await page.get_by_label("PAID", exact=True).check()
    await page.get_by_label("Refund reason").fill("recall")
    await page.get_by_role("button", name="Preview (dry run)").click()
    await expect(page.get_by_test_id("refund-total")).to_have_text("40.60")
    await expect(page.get_by_test_id("needs-approval")).to_contain_text("every BULK_REFUND needs approval")
    await page.get_by_role("button", name="Confirm and ask for approval").click()
    await page.wait_for_url(OPERATION_PAGE)
    op_id = page.url.rsplit("/", 1)[1]
    await expect(page.locator("h1 [data-field=status]")).to_have_text("AWAITING_APPROVAL")
    # Its creator may not approve it: the API's 403, in place.
    await page.get_by_role("button", name="Approve").click()
    await page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    await expect(page.get_by_role("alert")).to_contain_text("Forbidden")
    assert await harness.refunds(op_id) == []

    context = await browser.new_context(base_url=console_url)
    try:
        second = await context.new_page()
        await sign_in(second, bob.api_key)
        await second.get_by_role("link", name="Approvals").click()
        card = second.locator(f'[data-approval="{op_id}"]')
        await expect(card).to_contain_text("40.60")
        await screenshot(second, "approvals.png")
        await card.get_by_role("button", name="Approve").click()
        await second.get_by_label("Comment").fill("checked the recall list")
        await second.get_by_role("dialog").get_by_role("button", name="Confirm").click()
        await expect(second.get_by_text("Nothing is waiting for approval.")).to_be_visible()
    finally:
        await context.close()

    await page.reload()
    await expect(page.locator("h1 [data-field=status]")).to_have_text("COMPLETED", timeout=30_000)
    await expect(page.get_by_test_id("approval-status")).to_have_text("APPROVED")
    audit = page.locator("table.audit")
    for action, actor in (("created", "alice (console, key alice)"), ("approved", "bob (console, key bob)")):
        await expect(audit.locator("tr", has_text=action).first).to_contain_text(actor)
    # The person, not a key prefix; the selection in words; no empty values in the audit.
    await expect(page.get_by_test_id("started-by")).to_have_text("alice (console, key alice)")
    await expect(page.get_by_test_id("selection")).not_to_contain_text("{")
    await expect(page.get_by_test_id("selection")).to_contain_text("orders")
    created = await audit.locator("tr", has_text="created").first.inner_text()
    assert "null" not in created and "total_count: 0" not in created, created
    await expect(page.locator("ol.timeline")).to_contain_text("Approved")
    assert len(await harness.refunds(op_id)) == 4
    await screenshot(page, "operation-approved.png")


@pytest.mark.console_errors(r"status of 409 .*/revert")  # the second revert, refused
async def test_revert_an_update_from_its_page(harness: Harness, page: Page) -> None:
    admin = await harness.tenant("revert")
    ids = await harness.seed(admin, 3)
    await harness.start_worker()
    update = await harness.start(
        admin,
        {
            "operation_type": "BULK_UPDATE",
            "order_ids": [str(i) for i in ids],
            "parameters": {"set": {"note": "hold"}},
        },
    )
    await harness.wait_end(admin, update["id"])
    await sign_in(page, admin.api_key)
    await page.goto(f"/console/operations/{update['id']}")
    await page.get_by_role("button", name="Revert").click()
    await page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    await page.wait_for_url(lambda url: bool(OPERATION_PAGE.match(url)) and update["id"] not in url)
    revert = (await admin.get(f"/v1/bulk-operations/{page.url.rsplit('/', 1)[1]}")).json()
    assert revert["revert_of"] == update["id"]
    await expect(page.get_by_role("link", name=update["id"])).to_be_visible()
    # Reverting twice is refused: the API's 409, in place.
    await page.get_by_role("link", name=update["id"]).click()
    await page.wait_for_url(f"**/console/operations/{update['id']}")
    await page.get_by_role("button", name="Revert").click()
    await page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    await expect(page.get_by_role("alert")).to_contain_text("Conflict:")
    assert page.url.endswith(update["id"])

    # Paging the list, newest first, one at a time: the revert, then the update, then back.
    await page.goto("/console/operations?limit=1")
    rows = page.locator("tr[data-op]")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-op", revert["id"])
    await page.get_by_role("link", name="Older").click()
    await expect(rows.first).to_have_attribute("data-op", update["id"])
    await expect(page.get_by_role("link", name="Older")).to_have_count(0)
    await page.get_by_role("link", name="Newest").click()
    await expect(rows.first).to_have_attribute("data-op", revert["id"])
