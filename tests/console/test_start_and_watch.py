"""Start a BULK_CANCEL through the console's form: dry-run preview, explicit confirm, a progress bar
that reaches 100 % without a reload, and the failure breakdown the API agrees with."""

from __future__ import annotations

import re
from collections import Counter

from playwright.async_api import BrowserContext, Page, expect

from tests.console.helpers import screenshot, sign_in
from tests.harness import Harness
from tests.support import SlowOrders

OPERATION_PAGE = re.compile(r".*/console/operations/[0-9a-f-]{36}$")


async def test_cancel_through_the_form_with_preview_and_live_progress(
    harness: Harness, context: BrowserContext, page: Page
) -> None:
    tenant = await harness.tenant("console")
    await harness.seed(tenant, 14, status="PENDING", paid_at=None)
    await harness.seed(tenant, 6, status="SHIPPED")
    paid = [str(i) for i in await harness.seed(tenant, 5, status="PAID")]  # not selected
    # Slow enough to watch: 20 orders, two at a time, 0.25 s each.
    await harness.start_worker(SlowOrders(harness.order_pool, 0.25))
    # Event streams end every second: the pages' EventSources reconnect and the bars still get there.
    harness.configure(stream_max_s=1.0)
    earlier = [
        await harness.start(tenant, {"operation_type": "BULK_EXPORT", "order_ids": paid}),
        await harness.start(
            tenant, {"operation_type": "BULK_UPDATE", "order_ids": paid, "parameters": {"add_tags": ["vip"]}}
        ),
    ]
    for op in earlier:
        await harness.wait_end(tenant, op["id"])
    await sign_in(page, tenant.api_key)

    await page.get_by_role("link", name="New operation").first.click()
    # Every field of the form has a label (all types' fields, shown or not).
    unlabelled = await page.evaluate(
        """[...document.querySelectorAll('#new-form input:not([type=hidden]), #new-form select, #new-form textarea')]
           .filter((el) => !el.labels || el.labels.length === 0).map((el) => el.name)"""
    )
    assert unlabelled == []
    await page.get_by_label("Operation type").select_option("BULK_CANCEL")
    await page.get_by_label("PENDING", exact=True).check()
    await page.get_by_label("SHIPPED", exact=True).check()
    await page.get_by_label("Cancel reason").fill("customer asked")
    await page.get_by_label("Orders at once (1\u2013500)").fill("2")
    await page.get_by_role("button", name="Preview (dry run)").click()

    # The preview: the right counts, and nothing started yet.
    await expect(page.get_by_test_id("matched")).to_have_text("20")
    await expect(page.get_by_test_id("would-fail")).to_have_text("6")
    await expect(page.locator('td[data-code="ORDER_NOT_CANCELLABLE"]')).to_have_text("6")
    assert len((await tenant.get("/v1/bulk-operations")).json()["items"]) == len(earlier)
    await screenshot(page, "dry-run.png")

    await page.get_by_role("button", name="Confirm and start 20 orders").click()
    await page.wait_for_url(OPERATION_PAGE)
    op_id = page.url.rsplit("/", 1)[1]
    # Marks this document: a reload or a navigation would lose it.
    await page.evaluate("window.__sameDocument = true")
    bar = "document.querySelector('article progress').value"
    await page.wait_for_function(f"() => {bar} > 0 && {bar} < 100")
    await screenshot(page, "operation-running.png")
    # The list, in a second tab: its bar moves too, on its own.
    listing = await context.new_page()
    await listing.goto("/console/operations")
    await listing.evaluate("window.__sameDocument = true")
    row_bar = f"document.querySelector('tr[data-op=\"{op_id}\"] progress').value"
    await listing.wait_for_function(f"() => {row_bar} > 0 && {row_bar} < 100")
    await screenshot(listing, "operations.png")
    await page.wait_for_function(f"() => {bar} === 100", timeout=60_000)
    await listing.wait_for_function(f"() => {row_bar} === 100")
    await expect(listing.locator(f'tr[data-op="{op_id}"] [data-field=status]')).to_have_text(
        "PARTIAL_SUCCESS"
    )
    assert await listing.evaluate("window.__sameDocument === true")
    await expect(page.locator("h1 [data-field=status]")).to_have_text("PARTIAL_SUCCESS")
    assert await page.evaluate("window.__sameDocument === true")

    # The breakdown by code the console shows is the API's failed items, counted.
    api = await tenant.get(f"/v1/bulk-operations/{op_id}/items", params={"status": "FAILED", "limit": 200})
    expected = Counter(item["error_code"] for item in api.json()["items"])
    assert expected == {"ORDER_NOT_CANCELLABLE": 6}
    for code, count in expected.items():
        await expect(page.locator(f'td[data-code="{code}"]')).to_have_text(str(count))
    body = (await tenant.get(f"/v1/bulk-operations/{op_id}")).json()
    assert (body["status"], body["success_count"], body["failed_count"]) == ("PARTIAL_SUCCESS", 14, 6)
    counters = page.locator("dl.counters")
    await expect(counters.locator("[data-field=success_count]")).to_have_text("14")
    await expect(counters.locator("[data-field=failed_count]")).to_have_text("6")

    # No failure here is retryable: only "Retry all failed" is offered.
    await expect(page.get_by_role("button", name="Retry all failed")).to_be_visible()
    await expect(page.get_by_role("button", name="Retry failures")).to_have_count(0)

    await page.get_by_role("link", name="Operations", exact=True).click()
    row = page.locator(f'tr[data-op="{op_id}"]')
    await expect(row.locator("[data-field=status]")).to_have_text("PARTIAL_SUCCESS")
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(f"/console/operations/{op_id}")
    await screenshot(page, "operation-phone.png")
    # Nothing wider than a phone's screen: tables scroll inside their own box.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390


async def test_counters_from_the_checkpoint_while_no_worker_answers(harness: Harness, page: Page) -> None:
    tenant = await harness.tenant("console")
    ids = await harness.seed(tenant, 30, status="PENDING", paid_at=None)
    await harness.start_worker(SlowOrders(harness.order_pool, 0.2))
    op = await harness.start(
        tenant, {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids], "max_concurrency": 2}
    )
    await harness.wait_for(tenant, op["id"], lambda b: b["processed_count"] >= 4)
    await harness.stop_worker()  # the workflow's query has nobody to answer it now
    seen = (await tenant.get(f"/v1/bulk-operations/{op['id']}")).json()
    assert seen["progress_source"] == "checkpoint"

    await sign_in(page, tenant.api_key)
    await page.goto(f"/console/operations/{op['id']}")
    note = page.locator("[data-field=source-note]")
    await expect(note).to_be_visible()
    await expect(note).to_contain_text("last checkpoint")
    shown = int(await page.locator("dl.counters [data-field=processed_count]").inner_text())
    assert shown >= seen["processed_count"]
    await expect(page.locator("h1 [data-field=status]")).to_have_text("PROCESSING")
