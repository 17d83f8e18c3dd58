"""Browser fixtures: Debian's Chromium driven by Playwright's async API (the suite's session event
loop runs the tests, so the sync API cannot), and the test's app behind uvicorn on a real port.

The browser path lives here only: `BULKOPS_CHROMIUM` overrides the default `/usr/bin/chromium`
(`.ci/run` installs it with apt-get). Playwright never downloads a browser here (`playwright install`
and `channel="chromium"` need a CDN this machine does not reach).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.harness import Harness
from tests.serving import serve

CHROMIUM = os.environ.get("BULKOPS_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling Google's hosts, which this
# machine's closed network refuses; a sandbox needs privileges CI (root) does not grant.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: apt-get install -y --no-install-recommends chromium "
            "(or point BULKOPS_CHROMIUM at one)"
        )
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def console_url(harness: Harness) -> AsyncIterator[str]:
    """The harness's app (its lifespan already running) on a real socket, in the test's loop."""
    async with serve(harness.app) as (base, _):
        yield base


@pytest.fixture
async def context(browser: Browser, console_url: str) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(
        base_url=console_url, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    ctx.set_default_timeout(20_000)
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.fixture
async def page(context: BrowserContext, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A page whose browser console must stay clean: any console error or uncaught exception (a 404
    for an asset, a CSP refusal, a script error, a failed fetch) fails the test, unless the test
    expects it with `@pytest.mark.console_errors("regex", …)` (say, a 409 it provokes)."""
    page = await context.new_page()
    errors: list[str] = []
    page.on(
        "console",
        lambda msg: (
            errors.append(f"console.{msg.type}: {msg.text} ({msg.location.get('url')})")
            if msg.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    yield page
    marker = request.node.get_closest_marker("console_errors")
    allowed = [re.compile(p) for p in (marker.args if marker else ())]
    unexpected = [e for e in errors if not any(p.search(e) for p in allowed)]
    assert not unexpected, "the browser console logged errors:\n" + "\n".join(unexpected)
