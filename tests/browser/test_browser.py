"""The browser tests' own checks: a self-contained page renders in headless Chromium, errors are caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import OpenReport

pytestmark = pytest.mark.browser

ROWS = 12
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Everything inline: style, script, canvas, SVG. The script draws bars on the canvas and adds the rows.
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Daily access report (smoke)</title>
<style>
  body { font: 14px/1.4 sans-serif; margin: 24px; color: #222; }
  .row { padding: 4px 8px; border-bottom: 1px solid #ddd; }
  .row:nth-child(odd) { background: #f4f6fa; }
  canvas { border: 1px solid #888; }
</style>
</head>
<body>
<h1>Daily access report</h1>
<svg id="legend" width="360" height="40" role="img" aria-label="legend">
  <rect x="0" y="10" width="16" height="16" fill="#2a6fdb"/>
  <text x="22" y="23">Services used</text>
  <rect x="160" y="10" width="16" height="16" fill="#d94f3d"/>
  <text x="182" y="23">Services unused</text>
</svg>
<canvas id="chart" width="600" height="200"></canvas>
<div id="rows"></div>
<script>
  const rows = __ROWS__;
  const ctx = document.getElementById("chart").getContext("2d");
  for (let i = 0; i < rows; i++) {
    ctx.fillStyle = i % 2 ? "#d94f3d" : "#2a6fdb";
    ctx.fillRect(10 + i * 48, 190 - (i + 1) * 14, 36, (i + 1) * 14);
  }
  const list = document.getElementById("rows");
  for (let i = 0; i < rows; i++) {
    const row = document.createElement("div");
    row.className = "row";
    row.textContent = "Account " + String(i + 1).padStart(12, "0");
    list.appendChild(row);
  }
</script>
</body>
</html>
""".replace("__ROWS__", str(ROWS))


def test_self_contained_page_renders(open_report: OpenReport, tmp_path: Path, screenshot_path: Path) -> None:
    html = tmp_path / "report.html"
    html.write_text(PAGE, encoding="utf-8")

    opened = open_report(html, screenshot_path)

    page = opened.page
    assert page.title() == "Daily access report (smoke)"
    assert page.locator("div.row").count() == ROWS
    assert page.locator("div.row").last.inner_text() == "Account 000000000012"
    assert page.locator("#legend text").all_text_contents() == ["Services used", "Services unused"]
    # The script drew on the canvas: the first bar's middle is the legend's blue.
    pixel = page.evaluate(
        """() => Array.from(document.getElementById("chart").getContext("2d").getImageData(28, 185, 1, 1).data)"""
    )
    assert pixel == [0x2A, 0x6F, 0xDB, 255]
    assert opened.errors == []
    assert opened.requests == []  # self-contained: nothing fetched but the file itself
    assert opened.load_seconds > 0
    assert opened.goto_seconds > 0
    png = screenshot_path.read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 1024


def test_errors_are_collected(open_report: OpenReport, tmp_path: Path, screenshot_path: Path) -> None:
    """The control: an uncaught exception, a console error and a missing file are all reported."""
    html = tmp_path / "broken.html"
    html.write_text(
        """<!doctype html><html><body><p>broken</p>
<script>console.error("logged on purpose")</script>
<img src="missing.png" alt="missing">
<script>throw new Error("boom")</script>
</body></html>""",
        encoding="utf-8",
    )

    opened = open_report(html, screenshot_path)

    assert opened.page_errors == ["Error: boom"]
    assert "logged on purpose" in opened.console_errors
    assert [url for url in opened.failed_requests if "missing.png" in url]
    assert opened.requests == [(tmp_path / "missing.png").as_uri()]
    assert opened.page.locator("p").inner_text() == "broken"
    assert screenshot_path.read_bytes().startswith(PNG_SIGNATURE)
