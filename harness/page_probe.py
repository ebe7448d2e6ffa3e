"""The report page at scale, without the collector: an organization seeded like the emulator's (its OUs,
accounts, join dates and activity), every service allowed everywhere (the largest page), turned into the
day's tables and the page, as the report function makes it. Measures the page's bytes and the seconds to
build and render it; `make bench` prints them, and the browser tests load what it writes.

    python -m harness.page_probe --accounts 1000,10000 --output bench-output/pages
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import pyarrow as pa

from iam_report_emulator.catalog import load_catalog
from iam_report_emulator.presets import build_spec
from lambdas.collector.models import Polling, RunContext, TargetType
from lambdas.collector.organization import Node, OrganizationSnapshot
from lambdas.collector.report.daily import assemble
from lambdas.collector.report.page import render
from lambdas.collector.report.view import DETAIL_COLUMNS, JOB_COLUMNS
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS

AT = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
OUTPUT = Path("bench-output/pages")


@dataclass(frozen=True)
class Measured:
    accounts: int
    targets: int
    rows: int
    bytes: int
    build_seconds: float  # the tables into the page's view
    render_seconds: float  # the view into HTML
    path: Path


def synthetic(accounts: int, seed: int = 7) -> tuple[RunContext, OrganizationSnapshot, pa.Table, pa.Table]:
    spec = build_spec("demo", seed=seed, now=AT, accounts=accounts)
    catalog = load_catalog()
    services = sorted(catalog.services.values(), key=lambda s: s.namespace)
    paths: dict[str, str] = {}
    for entity in [spec.root_id, *(o.id for o in spec.ous), *(a.id for a in spec.accounts)]:
        paths[entity] = "/".join([spec.organization_id, *spec.chain(entity)])
    names = {o.id: o.name for o in spec.ous} | {a.id: a.name for a in spec.accounts} | {spec.root_id: "Root"}
    nodes = [Node(id=spec.root_id, type=TargetType.ROOT, name="Root", path=paths[spec.root_id], scps=())]
    nodes += [
        Node(id=o.id, type=TargetType.ORGANIZATIONAL_UNIT, name=o.name, path=paths[o.id], scps=()) for o in spec.ous
    ]
    nodes += [
        Node(id=a.id, type=TargetType.ACCOUNT, name=a.name, path=paths[a.id], joined=a.joined) for a in spec.accounts
    ]
    last: dict[str, dict[str, datetime]] = defaultdict(dict)
    for activity in spec.activity:
        for entity in spec.chain(activity.account_id):  # an OU's last use is its subtree's latest
            known = last[entity].get(activity.namespace)
            if known is None or activity.when > known:
                last[entity][activity.namespace] = activity.when
    columns: dict[str, list[object]] = {name: [] for name in DETAIL_COLUMNS}
    for node in nodes:
        used = last.get(node.id, {})
        for service in services:
            columns["target_id"].append(node.id)
            columns["target_type"].append(node.type.value)
            columns["service_namespace"].append(service.namespace)
            columns["service_name"].append(service.name)
            columns["last_authenticated_time"].append(used.get(service.namespace))
            columns["collected_at"].append(AT)
    schema = ACCESS_DETAILS.arrow_schema
    details = pa.table({name: pa.array(values, schema.field(name).type) for name, values in columns.items()})
    jobs = pa.Table.from_pylist(
        [
            {
                "run_id": "probe",
                "target_id": n.id,
                "target_type": n.type.value,
                "target_name": names.get(n.id),
                "target_path": n.path,
                "job_status": "COMPLETED",
                "error_code": None,
                "carried_forward": False,
                "data_age_days": 0,
                "policy_id": None,
            }
            for n in nodes
        ],
        schema=pa.schema([REPORT_JOBS.arrow_schema.field(name) for name in JOB_COLUMNS]),
    )
    run = RunContext(
        run_id="probe",
        dt=AT.date().isoformat(),
        collected_at=AT,
        organization_id=spec.organization_id,
        bucket="probe-bucket",
        manifest_key="runs/probe/manifest.json",
        targets=len(nodes),
        batches=1,
        polling=Polling(initial_wait_seconds=1, max_wait_seconds=1, max_attempts=1, inline_wait_seconds=0),
    )
    org = OrganizationSnapshot(
        organization_id=spec.organization_id,
        management_account_id=spec.management_account_id,
        read_at=AT,
        nodes=tuple(nodes),
    )
    return run, org, details, jobs


def history(run: RunContext, org: OrganizationSnapshot, days: int) -> list[dict[str, object]]:
    """A made-up trend for the root and top-level OUs: what `unused_summary` would hold after `days` runs."""
    top = [n for n in org.nodes if n.type is not TargetType.ACCOUNT and len(n.ancestors) <= 1]
    return [
        {
            "target_id": n.id,
            "services_unused": 300 + (i * 7 + k * 13) % 60,
            "dt": (AT - timedelta(days=days - k)).date().isoformat(),
        }
        for i, n in enumerate(top)
        for k in range(days)
    ]


def measure(accounts: int, output: Path, window: int = 90) -> Measured:
    run, org, details, jobs = synthetic(accounts)
    started = time.perf_counter()
    view, _ = assemble(run, org, details, jobs, window=window, history=history(run, org, 30))
    built = time.perf_counter()
    page = render(view).encode()
    rendered = time.perf_counter()
    output.mkdir(parents=True, exist_ok=True)
    path = output / f"report-{accounts}.html"
    path.write_bytes(page)
    return Measured(accounts, len(org.nodes), details.num_rows, len(page), built - started, rendered - built, path)


def browser_seconds(path: Path) -> tuple[float, int] | None:
    """Seconds for headless Chromium to load the page (Navigation Timing) and its console errors; None
    without Chromium (`make browser`)."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only when a browser is asked for

    from harness.screenshot import ChromiumMissingError, launch_options, new_page, open_page  # noqa: PLC0415

    try:
        options = launch_options()
    except ChromiumMissingError:
        return None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**options)
        opened = open_page(new_page(browser), path, path.with_suffix(".png"))
        browser.close()
    return opened.load_seconds, len(opened.errors)


def probe(sizes: Sequence[int], output: Path, out: TextIO) -> list[dict[str, object]]:
    """Each size's page measured and printed; the figures as `make bench` records them."""
    out.write("\nReport page (every service allowed everywhere: the largest page)\n")
    out.write("accounts  targets      rows     page bytes  build s  render s  browser load s  errors\n")
    figures: list[dict[str, object]] = []
    for accounts in sizes:
        m = measure(accounts, output)
        loaded = browser_seconds(m.path)
        load = f"{loaded[0]:>15.2f} {loaded[1]:>7}" if loaded else f"{'(no chromium)':>15} {'-':>7}"
        out.write(
            f"{m.accounts:>8,} {m.targets:>8,} {m.rows:>9,} {m.bytes:>14,} {m.build_seconds:>8.2f} "
            f"{m.render_seconds:>9.2f} {load}\n"
        )
        figures.append(
            {
                "accounts": m.accounts,
                "targets": m.targets,
                "rows": m.rows,
                "bytes": m.bytes,
                "build_seconds": round(m.build_seconds, 3),
                "render_seconds": round(m.render_seconds, 3),
                "browser_load_seconds": round(loaded[0], 3) if loaded else None,
                "browser_errors": loaded[1] if loaded else None,
            }
        )
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.page_probe", description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", default="1000,10000")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    probe([int(a) for a in args.accounts.split(",") if a], args.output, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
