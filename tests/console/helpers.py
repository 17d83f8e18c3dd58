"""What the console's browser tests share."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.async_api import Page

# Where to write the README's screenshots (`BULKOPS_CONSOLE_SCREENSHOTS=docs/console uv run pytest
# tests/console`); unset, the tests take none.
SCREENSHOTS = os.environ.get("BULKOPS_CONSOLE_SCREENSHOTS")


async def sign_in(page: Page, api_key: str) -> None:
    await page.goto("/console/login")
    await page.get_by_label("API key").fill(api_key)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console/operations")


async def screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        # Playwright creates the folder.
        await page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)
