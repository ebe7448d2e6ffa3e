"""The report page in a real browser: the demo organization's page as the deployed state machine writes it,
and a 1,000-account organization's (harness.page_probe): one heatmap row per root and OU, the legend,
the hover text, the accounts view drawn on demand, no console error; a screenshot of each."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.clients import client
from harness.page_probe import measure
from iam_report_emulator.seed import OrganizationSpec
from tests.browser.conftest import OpenReport
from tests.e2e.conftest import Collector, aws, collector, template  # noqa: F401 - the e2e fixtures, used here
from tests.helpers import organization_targets

pytestmark = pytest.mark.browser


def test_the_demo_organizations_page_shows_its_ous_the_legend_and_hover_text_without_errors(
    collector: Collector,  # noqa: F811 - the fixture imported above
    demo_org: OrganizationSpec,
    open_report: OpenReport,
    screenshot_path: Path,
    tmp_path: Path,
) -> None:
    execution = collector.run()
    assert execution.status == "SUCCEEDED", execution.cause
    page = execution.output["report"]["page"]
    s3, bucket = client("s3"), collector.deployment.bucket
    body = s3.get_object(Bucket=bucket, Key=page["key"])["Body"].read()
    assert s3.get_object(Bucket=bucket, Key=page["latest_key"])["Body"].read() == body
    html = tmp_path / "report.html"
    html.write_bytes(body)

    opened = open_report(html, screenshot_path)

    assert opened.errors == []
    assert opened.requests == []  # self-contained: nothing fetched after the document
    rows = opened.page.locator("#heat-ous .hm-row")
    # The root and every OU with a report (the management account is not a target; OUs all are)
    assert rows.count() == 1 + len(demo_org.ous)
    assert rows.first.get_attribute("data-id") == demo_org.root_id
    assert opened.page.locator("#legend span").count() == 6
    canvas = opened.page.locator("#heat-ous canvas").first
    box = canvas.bounding_box()
    assert box is not None
    assert box["height"] >= 110 + 14 * rows.count()
    opened.page.mouse.move(box["x"] + 6, box["y"] + 110 + 7)  # the root's first (most used) service
    tip = opened.page.locator("#tip")
    assert tip.is_visible()
    assert tip.inner_text().startswith("Root · ")
    accounts = opened.page.locator("#accounts-view")
    accounts.locator("summary").click()
    # drawn on the details' `toggle` event, which the browser fires as a task after the click returns
    opened.page.locator("#heat-accounts canvas").first.wait_for(state="attached", timeout=10_000)
    assert opened.page.locator("#heat-accounts canvas").count() == 1
    members = organization_targets(demo_org) - 1 - len(demo_org.ous)
    assert opened.page.locator("#heat-accounts .hm-row").count() == members
    assert opened.page.locator("#proposals tr").count() > 1
    assert opened.errors == []
    assert screenshot_path.stat().st_size > 10_000


def test_a_1000_account_organizations_page_loads_with_a_row_per_ou(
    open_report: OpenReport, screenshot_path: Path, tmp_path: Path
) -> None:
    measured = measure(1_000, tmp_path)
    opened = open_report(measured.path, screenshot_path)
    assert opened.errors == []
    groups = measured.targets - measured.accounts
    assert opened.page.locator("#heat-ous .hm-row").count() == groups
    assert opened.page.locator("#heat-ous canvas").count() == -(-groups // 1000)  # canvases of 1,000 rows
    print(
        f"1,000 accounts: page {measured.bytes:,} bytes, built in {measured.build_seconds:.2f} s, rendered in "
        f"{measured.render_seconds:.3f} s; the browser loaded it in {opened.load_seconds:.2f} s"
    )
    assert opened.load_seconds > 0
