"""Browser fixtures: Debian Chromium through Playwright's sync API, and a real cluster.

The browser is launched once per module; every test gets fresh browser contexts
(separate cookie jars, so two contexts are two different people) and its own
EMS with two room servers on SQLite (`cluster`), or shares one with the module's other
tests (`module_cluster`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Error, Page, expect, sync_playwright

from tests.services import missing

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Upper bound for every auto-waiting action and assertion (milliseconds).
TIMEOUT_MS = 10_000

# new_context() or new_context(timezone_id=..., viewport=...): options of Browser.new_context.
NewContext = Callable[..., BrowserContext]


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        missing(f"Debian Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")


# Where the pictures of docs/ go: a folder of the run's own, so that the suite never rewrites
# a tracked file; `make screenshots` (MOOT_SCREENSHOTS=docs/screenshots) refreshes the docs'.
# Read at import: each test's clean environment drops MOOT_* settings.
SCREENSHOTS_TO = os.environ.get("MOOT_SCREENSHOTS", "")


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder a test writes the docs' screenshots to (tests marked `screenshots`)."""
    if not SCREENSHOTS_TO:
        return tmp_path_factory.mktemp("screenshots")
    folder = Path(SCREENSHOTS_TO).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Debian Chromium for the module's tests."""
    _require_chromium()
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[NewContext]:
    """Makes isolated browser contexts; uncaught page errors fail the test."""
    contexts: list[BrowserContext] = []
    page_errors: list[str] = []

    def watch(page: Page) -> None:
        page.on("pageerror", lambda error: page_errors.append(f"{page.url}: {error}"))

    def make(**options: Any) -> BrowserContext:
        context = browser.new_context(**{"timezone_id": "UTC", "locale": "en-US", **options})
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        context.on("page", watch)
        contexts.append(context)
        return context

    try:
        yield make
    finally:
        for context in contexts:
            with contextlib.suppress(Error):  # the browser may already be gone
                context.close()
    assert not page_errors, "JavaScript errors in the page:\n" + "\n".join(page_errors)


@pytest.fixture
def cluster_url(sqlite_url: str) -> str:
    """The browser tests' clusters run on SQLite (the API tests cover both stores)."""
    return sqlite_url
