"""The operation page's controls: pause and resume (each confirmed), retry the failures, download an
export; what the page shows is what the API then answers."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.console.helpers import sign_in
from tests.harness import Harness
from tests.support import FlakyOrders

OPERATION_PAGE = re.compile(r".*/console/operations/[0-9a-f-]{36}$")


async def confirm(page: Page, button: str) -> None:
    await page.get_by_role("button", name=button, exact=True).click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text(f"{button}?")
    await dialog.get_by_role("button", name="Confirm").click()


async def test_pause_resume_retry_and_export(harness: Harness, page: Page) -> None:
    tenant = await harness.tenant("console")
    ids = await harness.seed(tenant, 24)
    broken = set(ids[:2])
    await harness.start_worker(FlakyOrders(harness.order_pool, always_fail=broken, delay=0.25))
    op = await harness.start(
        tenant, {"operation_type": "BULK_CANCEL", "order_ids": [str(i) for i in ids], "max_concurrency": 2}
    )
    await sign_in(page, tenant.api_key)
    await page.goto(f"/console/operations/{op['id']}")
    status = page.locator("h1 [data-field=status]")

    await expect(page.get_by_role("button", name="Pause", exact=True)).to_be_visible()
    # Backing out of the confirmation does nothing.
    await page.get_by_role("button", name="Pause", exact=True).click()
    await page.get_by_role("dialog").get_by_role("button", name="Back").click()
    await expect(status).to_have_text("PROCESSING")

    await confirm(page, "Pause")
    await expect(status).to_have_text("PAUSED")
    assert (await tenant.get(f"/v1/bulk-operations/{op['id']}")).json()["status"] == "PAUSED"
    # By keyboard: the button takes focus, Enter opens the confirmation with Confirm focused.
    await page.get_by_role("button", name="Resume", exact=True).focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("button", name="Confirm")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(status).to_have_text("PROCESSING")
    assert (await tenant.get(f"/v1/bulk-operations/{op['id']}")).json()["status"] == "PROCESSING"

    await expect(status).to_have_text("PARTIAL_SUCCESS", timeout=60_000)
    await expect(page.locator('td[data-code="RETRIES_EXHAUSTED"]')).to_have_text("2")
    await confirm(page, "Retry failures")
    await page.wait_for_url(lambda url: bool(OPERATION_PAGE.match(url)) and op["id"] not in url)
    retry_id = page.url.rsplit("/", 1)[1]
    assert retry_id != op["id"]
    await expect(page.get_by_role("link", name=op["id"])).to_be_visible()
    await page.get_by_role("link", name="Operations", exact=True).click()
    await expect(page.locator(f'tr[data-op="{op["id"]}"] [data-field=status]')).to_have_text(
        "PARTIAL_SUCCESS"
    )
    retry = await harness.wait_end(tenant, retry_id)
    assert (retry["retry_of"], retry["total_count"], retry["failed_count"]) == (op["id"], 2, 2)
    await expect(page.locator(f'tr[data-op="{retry_id}"] [data-field=status]')).to_have_text("FAILED")

    export = await harness.start(
        tenant,
        {
            "operation_type": "BULK_EXPORT",
            "order_ids": [str(i) for i in ids[2:7]],
            "parameters": {"format": "csv", "fields": ["id", "status"]},
        },
    )
    await harness.wait_end(tenant, export["id"])
    await page.goto(f"/console/operations/{export['id']}")
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download the export").click()
    download = await info.value
    # Filtered by type, the list shows the export alone.
    await page.goto("/console/operations")
    await page.get_by_label("Type").select_option("BULK_EXPORT")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("tr[data-op]")).to_have_count(1)
    await expect(page.locator(f'tr[data-op="{export["id"]}"]')).to_be_visible()
    lines = open(await download.path()).read().splitlines()  # noqa: ASYNC230 - a small local file
    assert lines[0] == "id,status"
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(str(i) for i in ids[2:7])
