"""report: the day's page from the day's tables, written to `reports/dt=…/index.html` and
`reports/latest/index.html`, and the day's `unused_summary` partition (the trend's history).

Reads the organization as discover saw it (tree order, names), the day's `access_details` (reports
over all SCPs), `report_jobs`, the previous snapshot's root and OU rows (changes), the last
`report_trend_days` of `unused_summary` and the day's guardrail lines. Both pages are written after
everything is computed, the dated one first; the latest is the same bytes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from lambdas.collector.guardrails.daily import ProposalLine, proposal_lines
from lambdas.collector.models import RecommendOutcome, ReportPage, RunContext, TargetType
from lambdas.collector.organization import OrganizationSnapshot
from lambdas.collector.report.heat import Grid, columns_of, grid
from lambdas.collector.report.page import render
from lambdas.collector.report.view import (
    DETAIL_COLUMNS,
    JOB_COLUMNS,
    PageView,
    changes,
    glance,
    problems,
    since,
    summary_rows,
    tree_rows,
    trend,
)
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS, UNUSED_SUMMARY
from lambdas.collector.store.storage import get_json, latest_before, list_partitions, put_table, read_snapshot

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SUMMARY_NAME = "summary.parquet"
_ALL_SCPS = pc.field("policy_id").is_null()
_GROUPS = pc.field("target_type") != TargetType.ACCOUNT.value


def _summary_table(
    run: RunContext, view_rows: list[dict[str, Any]], nodes: dict[str, Any], window: int, ages: dict[str, int]
) -> pa.Table:
    """The day's `unused_summary`: the root's and OUs' counts, each from its latest report (of that age)."""
    rows = [
        {
            "run_id": run.run_id,
            "collected_at": run.collected_at,
            "organization_id": run.organization_id,
            "target_path": nodes[r["target_id"]].path,
            "target_type": nodes[r["target_id"]].type.value,
            "target_name": nodes[r["target_id"]].name,
            "window_days": window,
            "data_age_days": ages.get(r["target_id"], 0),
            **r,
        }
        for r in view_rows
    ]
    return pa.Table.from_pylist(rows, schema=UNUSED_SUMMARY.arrow_schema)


def _history(s3: S3Client, run: RunContext, days: int) -> list[dict[str, Any]]:
    first = since(run.dt, days)
    out: list[dict[str, Any]] = []
    for dt in list_partitions(s3, run.bucket, run.layout, UNUSED_SUMMARY):
        if first <= dt <= run.dt:
            table = read_snapshot(
                s3, run.bucket, run.layout, UNUSED_SUMMARY, dt, columns=["target_id", "services_unused"]
            )
            out.extend({**row, "dt": dt} for row in table.to_pylist())
    return out


def assemble(
    run: RunContext,
    org: OrganizationSnapshot,
    details: pa.Table,
    jobs: pa.Table,
    *,
    window: int,
    previous: pa.Table | None = None,
    compared_with: str | None = None,
    history: list[dict[str, Any]] | None = None,
    proposals: tuple[ProposalLine, ...] = (),
) -> tuple[PageView, pa.Table]:
    """The page's view of the day's tables (pure), and the day's `unused_summary` rows (its trend point)."""
    groups_details = details.filter(pc.not_equal(details["target_type"], TargetType.ACCOUNT.value))
    groups, accounts = tree_rows(org.nodes, set(details["target_id"].to_pylist()) | set(jobs["target_id"].to_pylist()))
    columns = columns_of(groups_details if groups_details.num_rows else details, window)
    ous = grid(groups_details, groups, columns, with_days=True)
    account_grid: Grid | None = None
    if accounts:
        account_rows = details.filter(pc.equal(details["target_type"], TargetType.ACCOUNT.value))
        account_grid = grid(account_rows, accounts, columns, with_days=False)
    ages = {
        row["target_id"]: row["data_age_days"] or 0
        for row in jobs.to_pylist()
        if row["policy_id"] is None and row["job_status"] == "COMPLETED"
    }
    summary = _summary_table(run, summary_rows(groups_details, groups, window), org.by_id, window, ages)
    today = [{"target_id": r["target_id"], "services_unused": r["services_unused"], "dt": run.dt}
             for r in summary.to_pylist()]  # fmt: skip
    labels = {n.id: n.name or n.id for n in org.nodes}
    view = PageView(
        glance=glance(
            details,
            jobs,
            organization_id=run.organization_id,
            dt=run.dt,
            run_id=run.run_id,
            at=run.collected_at,
            window=window,
        ),
        ous=ous,
        accounts=account_grid,
        trend=tuple(trend([*(history or []), *today], labels, [r.id for r in groups if r.depth <= 1])),
        changes=tuple(changes(groups_details, previous, labels, window)),
        compared_with=compared_with,
        proposals=proposals,
        problems=tuple(problems(jobs, run.run_id, run.report_role_arn)),
    )
    return view, summary


def build(
    run: RunContext, s3: S3Client, *, window: int, trend_days: int, guardrails: RecommendOutcome
) -> tuple[PageView, pa.Table]:
    """Read what the page shows, then `assemble` it."""
    bucket, layout = run.bucket, run.layout
    org = OrganizationSnapshot.model_validate(get_json(s3, bucket, layout.organization(run.run_id)))
    details = read_snapshot(s3, bucket, layout, ACCESS_DETAILS, run.dt, columns=DETAIL_COLUMNS, filters=_ALL_SCPS)
    jobs = read_snapshot(s3, bucket, layout, REPORT_JOBS, run.dt, columns=JOB_COLUMNS)
    before = latest_before(s3, bucket, layout, ACCESS_DETAILS, run.dt)
    previous = (
        read_snapshot(s3, bucket, layout, ACCESS_DETAILS, before, columns=DETAIL_COLUMNS, filters=_ALL_SCPS & _GROUPS)
        if before
        else None
    )
    return assemble(
        run,
        org,
        details,
        jobs,
        window=window,
        previous=previous,
        compared_with=before,
        history=[row for row in _history(s3, run, trend_days) if row["dt"] != run.dt],
        proposals=tuple(proposal_lines(s3, run)) if guardrails.summary else (),
    )


def publish(
    run: RunContext, s3: S3Client, *, window: int, trend_days: int, guardrails: RecommendOutcome, region: str
) -> ReportPage:
    started = time.perf_counter()
    view, summary = build(run, s3, window=window, trend_days=trend_days, guardrails=guardrails)
    body = render(view).encode()
    seconds = time.perf_counter() - started
    put_table(s3, run.bucket, f"{run.layout.partition(UNUSED_SUMMARY, run.dt)}{SUMMARY_NAME}", summary)
    key = run.layout.report_page(run.dt)
    for target in (key, run.layout.latest_report_page):
        s3.put_object(
            Bucket=run.bucket, Key=target, Body=body, ContentType="text/html; charset=utf-8", CacheControl="no-cache"
        )
    return ReportPage(
        dt=run.dt,
        key=key,
        latest_key=run.layout.latest_report_page,
        uri=f"s3://{run.bucket}/{key}",
        console_url=f"https://s3.console.aws.amazon.com/s3/object/{run.bucket}?region={region}&prefix={quote(key)}",
        bytes=len(body),
        render_seconds=round(seconds, 3),
    )
