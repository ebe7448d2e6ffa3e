"""The deployed definition, end to end: every target collected, throttling absorbed, failures and stuck
jobs recorded, reruns replace, and the report-owner rule holds through the state machine."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from botocore.exceptions import ClientError

from harness.athena_sql import run_query
from harness.clients import role_session_client
from harness.collector_demo import QUERIES
from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.collect import report_session
from tests.conftest import REPORTER_ROLE
from tests.e2e.conftest import FAST, Collector
from tests.helpers import organization_targets, rows_of

UNUSED_AFTER_DAYS = 90  # cdk.json's default, which the synthesized alert function gets


def unused_truth(spec: OrganizationSpec, paths: list[str], collected_at: datetime) -> set[tuple[str, str]]:
    """What IAM itself says is unused at each path, read with a session of our own (not the collector's)."""
    iam = role_session_client("iam", f"arn:aws:iam::{spec.management_account_id}:role/{REPORTER_ROLE}", "truth")
    cutoff = collected_at - timedelta(days=UNUSED_AFTER_DAYS)
    unused = set()
    for path in paths:
        page = whole_report(iam, path)
        assert page["JobStatus"] == "COMPLETED"
        assert not page.get("IsTruncated")
        for detail in page.get("AccessDetails", []):
            last = detail.get("LastAuthenticatedTime")
            if last is None or last < cutoff:
                unused.add((path, detail["ServiceNamespace"]))
    return unused


def whole_report(iam: Any, path: str) -> dict[str, Any]:
    """One report read the simple way, as IAM admits it: one job at a time, read once it completes."""
    deadline = time.monotonic() + 30
    while True:
        try:
            job = iam.generate_organizations_access_report(EntityPath=path)["JobId"]
            break
        except ClientError as error:
            if error.response["Error"]["Code"] != "ReportGenerationLimitExceeded" or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    while (page := iam.get_organizations_access_report(JobId=job, MaxItems=1000))["JobStatus"] == "IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return dict(page)


def jobs_by_path(tables: dict[str, pa.Table]) -> dict[str, dict[str, Any]]:
    return {job["target_path"]: job for job in tables["report_jobs"].to_pylist()}


def test_every_target_is_collected_completely_and_unused_services_match_iam(
    collector: Collector, demo_org: OrganizationSpec
) -> None:
    execution = collector.run()
    assert execution.status == "SUCCEEDED", execution.cause
    tables = collector.tables()
    jobs = jobs_by_path(tables)
    assert len(jobs) == tables["report_jobs"].num_rows == organization_targets(demo_org) == execution.run["targets"]
    assert {job["job_status"] for job in jobs.values()} == {"COMPLETED"}
    details = tables["access_details"]
    for job in jobs.values():
        rows = details.filter(pa.compute.equal(details["job_id"], job["job_id"]))
        assert rows.num_rows == job["services_accessible"]
    # The deployed named query, on DuckDB, equals what IAM says, target by target.
    found = run_query((QUERIES / "unused_services_latest.sql").read_text(), tables)
    collected_at = details["collected_at"][0].as_py()
    truth = unused_truth(demo_org, sorted(jobs), collected_at)
    assert {(r["target_path"], r["service_namespace"]) for r in found.to_pylist()} == truth
    # And the alert counts them, and names the root among the scopes where most is unused.
    (alert,) = collector.alerts()
    assert alert["MessageAttributes"]["unused_services"]["Value"] == str(len(truth))
    assert f"(root {demo_org.root_id}): " in alert["Message"].split("\nWHERE MOST IS UNUSED")[1]


def test_throttling_on_30_percent_of_iam_calls_changes_nothing_in_the_data(
    collector: Collector, store: AccessReportStore
) -> None:
    clean = collector.run()
    assert clean.status == "SUCCEEDED"
    expected = rows_of(collector.tables()["access_details"])
    store.throttler.configure(failure_rate=0.3, seed=11)
    throttled = collector.run()
    assert throttled.status == "SUCCEEDED", throttled.cause
    assert sum(store.throttler.counters.throttled.values()) > 0
    assert rows_of(collector.tables()["access_details"]) == expected


def test_a_failed_job_is_in_report_jobs_and_the_alert_while_every_other_target_completes(
    collector: Collector, demo_org: OrganizationSpec, store: AccessReportStore
) -> None:
    failing = demo_org.path(demo_org.ous[0].id)
    store.configure(failing_paths=frozenset({failing}))
    execution = collector.run()
    assert execution.status == "SUCCEEDED", execution.cause
    jobs = jobs_by_path(collector.tables())
    assert jobs[failing]["job_status"] == "FAILED"
    assert jobs[failing]["error_code"]
    assert {job["job_status"] for path, job in jobs.items() if path != failing} == {"COMPLETED"}
    (alert,) = collector.alerts()
    failed_ou = demo_org.ous[0]
    assert f": 1 report job FAILED, on {failed_ou.name} OU." in alert["Message"]
    assert alert["MessageAttributes"]["problem_jobs"]["Value"] == "1"


def test_a_job_that_never_completes_is_timed_out_after_the_bounded_polls_and_the_run_finishes(
    collector: Collector, demo_org: OrganizationSpec, store: AccessReportStore
) -> None:
    stuck = demo_org.path(demo_org.root_id)
    # A job that never ends holds one of IAM's job slots for good: here IAM admits more, and its reports
    # complete at once, so the other targets complete around it.
    store.configure(stuck_paths=frozenset({stuck}), max_jobs_in_progress=50, job_seconds=0)
    execution = collector.run(
        {**FAST, "poll_initial_wait_seconds": 0, "poll_max_wait_seconds": 0, "poll_max_attempts": 3}
    )
    assert execution.status == "SUCCEEDED", execution.cause
    jobs = jobs_by_path(collector.tables())
    assert (jobs[stuck]["job_status"], jobs[stuck]["error_code"]) == ("TIMED_OUT", "TimedOut")
    assert len(jobs) == execution.run["targets"]
    # With no wait between polls, generate made the three polls itself, in its invocation
    assert [i.stage for i in collector.lambdas.invocations].count("generate") == execution.run["batches"]
    assert "poll" not in {i.stage for i in collector.lambdas.invocations}


def test_reading_a_report_from_another_session_fails_every_job_through_the_state_machine(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner rule is live end to end: if each Lambda assumed the reporter role with its own session
    name (as separate execution roles would be), IAM refuses every read and no job completes."""
    original = report_session.session_name
    calls = iter(range(10_000))
    monkeypatch.setattr(report_session, "session_name", lambda run_id: f"{original(run_id)[:50]}-{next(calls)}")
    # The reports are read by the poll function after a Wait: none is due within generate's invocation
    polling = {"poll_initial_wait_seconds": 1, "poll_max_wait_seconds": 1, "poll_inline_wait_seconds": 0}
    execution = collector.run({**FAST, **polling})
    assert execution.status == "SUCCEEDED", execution.cause
    jobs = collector.tables()["report_jobs"].to_pylist()
    assert jobs
    assert {job["job_status"] for job in jobs} == {"FAILED"}
    assert collector.tables()["access_details"].num_rows == 0
