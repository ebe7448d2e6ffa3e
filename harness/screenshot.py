"""A full-page screenshot of the self-contained HTML report, taken by headless Chromium.

`python -m harness.screenshot [html] [png]` (`make screenshot`): opens the report (by default the demo's,
`demo-output/report.html`) at a width of 1400 CSS pixels and writes a full-page PNG (`docs/report.png`).
It prints the page's console errors, uncaught exceptions and failed requests, and exits 1 if there were
any (the PNG is written all the same, to look at).

The browser is Debian's `chromium` (`/usr/bin/chromium`, installed by `make browser`), driven by
Playwright, which never downloads a browser of its own here. `launch_options` and `open_page` are shared
with the browser tests (tests/browser/conftest.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Error, Page, Request, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root (no sandbox), no GPU, and none of Chromium's own connections (updates, sync, field
# trials, QUIC probes): they'd be refused by a closed network, slowly. Playwright adds --headless and a
# fresh temporary --user-data-dir to every launch.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WIDTH = 1400
HEIGHT = 900  # the first viewport only: full-page screenshots take the whole document's height
DEFAULT_HTML = Path("demo-output/report.html")
DEFAULT_PNG = Path("docs/report.png")


class ChromiumMissingError(RuntimeError):
    """Debian's chromium is not installed."""


def launch_options() -> dict[str, Any]:
    """Keyword arguments of `playwright.chromium.launch`: Debian's Chromium, headless, quiet on the network."""
    if not CHROMIUM.exists():
        raise ChromiumMissingError(f"{CHROMIUM} not found: `make browser` installs Debian's chromium")
    return {"executable_path": str(CHROMIUM), "headless": True, "args": list(CHROMIUM_ARGS)}


@dataclass
class Opened:
    """A loaded page, still open, and what it did while loading (the lists go on filling while it is open)."""

    page: Page
    load_seconds: float  # navigation start to the end of the load event, by the page's Navigation Timing
    goto_seconds: float  # wall clock around `goto(..., wait_until="load")`, the browser's round trips included
    screenshot: Path
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)  # uncaught exceptions and unhandled rejections
    failed_requests: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL fetched after the document itself

    @property
    def errors(self) -> list[str]:
        return [*self.page_errors, *self.console_errors, *self.failed_requests]


def open_page(page: Page, html: Path, screenshot: Path) -> Opened:
    """Load a local HTML file in `page`, wait for its load event and save a full-page PNG of it."""
    url = html.resolve().as_uri()
    console_errors: list[str] = []
    page_errors: list[str] = []
    failed_requests: list[str] = []
    requests: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    def on_page_error(error: Error) -> None:
        page_errors.append(f"{error.name}: {error.message}" if error.name else error.message)

    def on_request_failed(request: Request) -> None:
        failed_requests.append(f"{request.url}: {request.failure}")

    def on_request(request: Request) -> None:
        if request.url != url:
            requests.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    page.on("requestfailed", on_request_failed)
    page.on("request", on_request)
    started = time.perf_counter()
    page.goto(url, wait_until="load")
    goto_seconds = time.perf_counter() - started
    load_ms = page.evaluate(
        """() => {
            const [nav] = performance.getEntriesByType("navigation");
            return nav.loadEventEnd - nav.startTime;
        }"""
    )
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=screenshot, full_page=True)
    return Opened(
        page=page,
        load_seconds=float(load_ms) / 1000,
        goto_seconds=goto_seconds,
        screenshot=screenshot,
        console_errors=console_errors,
        page_errors=page_errors,
        failed_requests=failed_requests,
        requests=requests,
    )


def new_page(browser: Browser, width: int = WIDTH) -> Page:
    """A page in a context of its own (no state shared with other pages), `width` CSS pixels wide."""
    context = browser.new_context(viewport={"width": width, "height": HEIGHT})
    return context.new_page()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness.screenshot", description=__doc__.splitlines()[0])
    parser.add_argument("html", nargs="?", type=Path, default=DEFAULT_HTML, help=f"default {DEFAULT_HTML}")
    parser.add_argument("png", nargs="?", type=Path, default=DEFAULT_PNG, help=f"default {DEFAULT_PNG}")
    parser.add_argument("--width", type=int, default=WIDTH, help=f"viewport width in CSS pixels (default {WIDTH})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    html: Path = args.html
    png: Path = args.png
    if not html.is_file():
        print(f"{html} not found: run `make demo` first (it writes the report)", file=sys.stderr)
        return 2
    try:
        options = launch_options()
    except ChromiumMissingError as error:
        print(error, file=sys.stderr)
        return 2
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**options)
        try:
            opened = open_page(new_page(browser, args.width), html, png)
            height = opened.page.evaluate("() => document.documentElement.scrollHeight")
        finally:
            browser.close()
    print(f"{png}: {args.width}x{height} CSS px, {png.stat().st_size:,} bytes; loaded in {opened.load_seconds:.3f} s")
    for problem in opened.errors:
        print(f"page error: {problem}", file=sys.stderr)
    return 1 if opened.errors else 0


if __name__ == "__main__":
    sys.exit(main())
