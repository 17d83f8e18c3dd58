"""What the console's tests share: signing in (in a browser, or over plain HTTP) and screenshots."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
from playwright.async_api import Page

# Where to write the README's screenshots (`BULKOPS_CONSOLE_SCREENSHOTS=docs/console uv run pytest
# tests/console`); unset, the tests take none.
SCREENSHOTS = os.environ.get("BULKOPS_CONSOLE_SCREENSHOTS")


async def sign_in(page: Page, api_key: str) -> None:
    await page.goto("/console/login")
    await page.get_by_label("API key").fill(api_key)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console/operations")


def csrf_token(html: str) -> str:
    """The CSRF token of the page's form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no csrf_token in the page"
    return found[1]


async def sign_in_http(web: httpx.AsyncClient, api_key: str) -> None:
    """Sign `web` in to the console without a browser: the sign-in form, its token, the 303."""
    token = csrf_token((await web.get("/console/login")).text)
    signed = await web.post("/console/login", data={"api_key": api_key, "csrf_token": token})
    assert signed.status_code == 303, signed.text


async def screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        # Playwright creates the folder.
        await page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)
