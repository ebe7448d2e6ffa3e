"""Browser tests: self-contained HTML pages opened in headless Chromium (Debian's), driven by Playwright.

One browser per test session, so one per xdist worker; each page gets a context of its own, closed at
the end of its test. Screenshots go to test-output/browser/ (git-ignored), to look at after a run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from harness.screenshot import Opened, launch_options, new_page, open_page

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "browser"

OpenReport = Callable[[Path, Path], Opened]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    options = launch_options()  # fails with how to install Chromium if it is missing
    with sync_playwright() as playwright:
        started = time.perf_counter()
        browser = playwright.chromium.launch(**options)
        # Shown with -rP or on failure: what a session start costs (the driver, then Chromium).
        print(f"Chromium {browser.version} launched in {time.perf_counter() - started:.2f} s")
        yield browser
        browser.close()


@pytest.fixture
def open_report(browser: Browser) -> Iterator[OpenReport]:
    """`open_report(html, png)`: the page loaded, its errors and load time, and a full-page PNG saved."""
    contexts: list[BrowserContext] = []

    def open_(html: Path, screenshot: Path) -> Opened:
        page = new_page(browser)
        contexts.append(page.context)
        return open_page(page, html, screenshot)

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot_path(request: pytest.FixtureRequest) -> Path:
    """test-output/browser/<test name>.png (a worker writes only its own tests' files)."""
    return SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.name)}.png"
