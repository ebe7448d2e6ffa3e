"""The collector's functions against the emulator, chained by hand as the state machine chains them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from harness.clients import client
from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.config import ReporterSettings, load
from lambdas.collector.services import services
from lambdas.handlers import alert
from tests.collector_run import invoke, run_by_hand, snapshot
from tests.helpers import organization_targets, ou_id, rows_of

DAY = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def test_every_target_of_the_demo_org_is_collected_completely(
    s3: Any, demo_org: OrganizationSpec, store: AccessReportStore
) -> None:
    run = run_by_hand(s3, "run-1", DAY)
    details, jobs = snapshot(s3, "2026-11-24")
    expected_targets = organization_targets(demo_org)
    assert run.run["targets"] == expected_targets
    assert jobs.num_rows == expected_targets
    assert set(jobs["job_status"].to_pylist()) == {"COMPLETED"}
    for job in jobs.to_pylist():
        rows = details.filter(pa.compute.equal(details["job_id"], job["job_id"]))
        assert rows.num_rows == job["services_accessible"] == job["rows_written"]
    print(run.invocations, store.throttler.counters)


def test_each_target_costs_two_iam_calls_and_rows_match_the_report_counts(
    s3: Any, demo_org: OrganizationSpec, store: AccessReportStore
) -> None:
    # Given the demo organization and reports that complete at once
    store.configure(job_seconds=0)
    # When the collector runs
    run = run_by_hand(s3, "run-1", DAY)
    details, jobs = snapshot(s3, "2026-11-24")
    # Then one generate and one get per target, every job complete, names recorded
    assert store.throttler.counters.calls == {
        "GenerateOrganizationsAccessReport": run.run["targets"],
        "GetOrganizationsAccessReport": run.run["targets"],
    }
    assert set(jobs["iam_calls"].to_pylist()) == {2}
    assert set(jobs["pages"].to_pylist()) == {1}
    names = dict(zip(jobs["target_id"].to_pylist(), jobs["target_name"].to_pylist(), strict=True))
    assert names[ou_id(demo_org, "Sandbox")] == "Sandbox"
    for job in jobs.to_pylist():
        rows = details.filter(pa.compute.equal(details["job_id"], job["job_id"]))
        never = rows.filter(pa.compute.invert(rows["accessed"])).num_rows
        assert (rows.num_rows, never) == (job["services_accessible"], job["services_not_accessed"])
    assert set(details["run_id"].to_pylist()) == {"run-1"}
    # And the state machine's payloads carry ids and counts, never pages
    assert max(len(str(state)) for state in run.states) < 20_000
    assert run.snapshot is not None
    assert run.snapshot["jobs_by_status"] == {"COMPLETED": run.run["targets"]}


def test_short_pages_are_followed_to_the_end_with_markers(
    s3: Any, demo_org: OrganizationSpec, store: AccessReportStore
) -> None:
    # Given IAM answering 7 items per page while more remain (IsTruncated true), reports done at once
    store.configure(short_page_items=7, job_seconds=0)
    run = run_by_hand(s3, "run-short", DAY)
    _, jobs = snapshot(s3, "2026-11-24")
    # Then fetch followed every marker: all rows are there, in many pages
    assert run.invocations["fetch"] >= 1
    assert set(jobs["job_status"].to_pylist()) == {"COMPLETED"}
    for job in jobs.to_pylist():
        assert job["rows_written"] == job["services_accessible"]
        assert job["pages"] == max(1, -(-job["services_accessible"] // 7))
        assert job["iam_calls"] == 1 + job["pages"]


def test_a_failed_job_is_recorded_with_its_error_and_others_complete(
    s3: Any, demo_org: OrganizationSpec, store: AccessReportStore
) -> None:
    sandbox_path = demo_org.path(ou_id(demo_org, "Sandbox"))
    store.configure(failing_paths=frozenset({sandbox_path}))
    run_by_hand(s3, "run-1", DAY)
    details, jobs = snapshot(s3, "2026-11-24")
    failed = jobs.filter(pa.compute.equal(jobs["target_path"], sandbox_path)).to_pylist()
    assert [(j["job_status"], j["error_code"], j["rows_written"]) for j in failed] == [
        ("FAILED", "ReportGenerationFailed", 0)
    ]
    assert failed[0]["error_message"]
    others = jobs.filter(pa.compute.not_equal(jobs["target_path"], sandbox_path))
    assert set(others["job_status"].to_pylist()) == {"COMPLETED"}
    assert sandbox_path not in set(details["target_path"].to_pylist())


def test_the_concurrent_job_limit_leaves_targets_pending_until_capacity_frees(
    s3: Any, demo_org: OrganizationSpec, store: AccessReportStore
) -> None:
    # Given reports that take 60 s and room for only 3 jobs at a time, on a frozen clock, and a
    # collector configured for more than IAM admits
    store.configure(job_seconds=60, max_jobs_in_progress=3)
    store.clock.freeze(DAY)
    options = {
        "poll_initial_wait_seconds": 30,
        "poll_max_wait_seconds": 60,
        "iam_max_jobs_in_progress": 50,
        "batch_size": 5,  # batches enough for more lanes than IAM admits jobs
    }
    # When each Wait state advances the clock instead of sleeping
    run = run_by_hand(s3, "run-1", DAY, options=options, on_wait=store.clock.advance)
    # Then discover found IAM's cap before deciding the lanes (3 jobs started, then one refused), and the
    # first batch left what it could not start pending (not failed); all completed in the end
    assert run.run["lanes"] == 3
    first = run.states[0]
    assert first["stage"] == "generate"
    statuses = [job["status"] for job in first["jobs"]]
    assert statuses.count("IN_PROGRESS") >= 1
    assert first["pending"] == len(first["jobs"]) > 3
    assert set(statuses) == {"IN_PROGRESS", "NOT_STARTED"}
    _, jobs = snapshot(s3, "2026-11-24")
    assert set(jobs["job_status"].to_pylist()) == {"COMPLETED"}
    assert jobs.num_rows == run.run["targets"]


def test_throttling_on_30_percent_of_calls_loses_no_row(
    s3: Any, demo_org: OrganizationSpec, store: AccessReportStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCOPE", "ous")
    run_by_hand(s3, "calm", DAY)
    calm, _ = snapshot(s3, "2026-11-24")
    store.throttler.configure(failure_rate=0.3, seed=3)
    throttles_before = services().reporter(load_reporter()).throttles.count
    run_by_hand(s3, "stormy", DAY)
    stormy, jobs = snapshot(s3, "2026-11-24")
    assert sum(store.throttler.counters.throttled.values()) > 0
    assert services().reporter(load_reporter()).throttles.count > throttles_before
    assert set(jobs["job_status"].to_pylist()) == {"COMPLETED"}
    assert set(stormy["run_id"].to_pylist()) == {"stormy"}
    assert rows_of(stormy) == rows_of(calm)


def load_reporter() -> ReporterSettings:
    return load(ReporterSettings)


def test_a_rerun_on_the_same_day_replaces_the_days_data_without_duplicates(s3: Any, demo_org: OrganizationSpec) -> None:
    run_by_hand(s3, "first", DAY)
    first, _ = snapshot(s3, "2026-11-24")
    # A cadence of one day makes every account due again (else the rerun collects root and OUs, carries the rest)
    second_run = run_by_hand(s3, "second", DAY.replace(hour=9), options={"account_refresh_days": 1})
    second, jobs = snapshot(s3, "2026-11-24")
    assert second.num_rows == first.num_rows
    assert rows_of(second) == rows_of(first)
    assert set(second["run_id"].to_pylist()) == {"second"}
    assert set(jobs["run_id"].to_pylist()) == {"second"}
    assert second_run.snapshot is not None
    assert second_run.snapshot["replaced_files"] == 2  # the first run's access_details and report_jobs files


def test_a_failing_rerun_keeps_the_days_good_data(
    s3: Any, demo_org: OrganizationSpec, store: AccessReportStore
) -> None:
    # Given a good run, then a rerun the same day in which the Sandbox OU's report fails
    run_by_hand(s3, "good", DAY)
    good, _ = snapshot(s3, "2026-11-24")
    sandbox_path = demo_org.path(ou_id(demo_org, "Sandbox"))
    store.configure(failing_paths=frozenset({sandbox_path}))
    rerun = run_by_hand(s3, "bad", DAY.replace(hour=9), options={"account_refresh_days": 1})
    details, jobs = snapshot(s3, "2026-11-24")
    # Then the Sandbox OU keeps the good run's rows; everything else is the rerun's; no duplicates
    assert rows_of(details) == rows_of(good)
    kept = details.filter(pa.compute.equal(details["target_path"], sandbox_path))
    assert set(kept["run_id"].to_pylist()) == {"good"}
    sandbox_jobs = jobs.filter(pa.compute.equal(jobs["target_path"], sandbox_path))
    assert sorted(zip(sandbox_jobs["run_id"].to_pylist(), sandbox_jobs["job_status"].to_pylist(), strict=True)) == [
        ("bad", "FAILED"),
        ("good", "COMPLETED"),
    ]
    assert rerun.snapshot is not None
    assert rerun.snapshot["carried_over_targets"] == 1


def test_a_job_that_never_completes_is_recorded_timed_out_and_the_run_ends(
    s3: Any, demo_org: OrganizationSpec, store: AccessReportStore
) -> None:
    stuck = demo_org.path(demo_org.root_id)
    # A job that never ends holds one of IAM's job slots for good: with the observed cap of one, nothing
    # else could start. Here IAM admits more, so the other targets complete around it.
    store.configure(stuck_paths=frozenset({stuck}), max_jobs_in_progress=50, job_seconds=0)
    options = {"poll_initial_wait_seconds": 0, "poll_max_wait_seconds": 0, "poll_max_attempts": 3}
    run = run_by_hand(s3, "run-1", DAY, options={**options, "iam_max_jobs_in_progress": 50})
    _, jobs = snapshot(s3, "2026-11-24")
    root = jobs.filter(pa.compute.equal(jobs["target_path"], stuck)).to_pylist()
    assert [(j["job_status"], j["error_code"], j["iam_calls"]) for j in root] == [("TIMED_OUT", "TimedOut", 4)]
    # With no wait between polls, generate made the three polls itself, in its invocation
    assert "poll" not in run.invocations
    assert jobs.num_rows == run.run["targets"]


def test_the_alert_after_a_run_names_the_unused_services_of_the_snapshot(
    s3: Any, demo_org: OrganizationSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run of the demo organization and a topic with a queue subscribed
    sns, sqs = client("sns"), client("sqs")
    topic_arn = sns.create_topic(Name="org-access-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv("ALERT_TOPIC_ARN", topic_arn)
    run = run_by_hand(s3, "run-1", DAY)
    # When alert runs on the snapshot
    result = invoke(alert.handler, {"run": run.run, "snapshot": run.snapshot})
    # Then it counts what the snapshot says is unused (never used, or not for 90 days) and publishes it
    details, _ = snapshot(s3, "2026-11-24")
    cutoff = DAY - timedelta(days=90)
    unused = [
        row
        for row in details.select(["target_path", "service_namespace", "last_authenticated_time"]).to_pylist()
        if row["last_authenticated_time"] is None or row["last_authenticated_time"] < cutoff
    ]
    assert result["unused_services"] == len(unused)
    assert result["targets_with_unused"] == len({row["target_path"] for row in unused})
    assert (result["published"], result["problem_jobs"], result["newly_unused_services"]) == (True, 0, 0)
    envelope = json.loads(sqs.receive_message(QueueUrl=queue_url)["Messages"][0]["Body"])
    assert len(envelope["Subject"]) < 100
    assert envelope["MessageAttributes"]["unused_services"]["Value"] == str(len(unused))
    # The root is among the scopes where most is unused (the alert names roots and OUs, not paths)
    assert f"(root {demo_org.root_id}): " in envelope["Message"].split("WHERE MOST IS UNUSED")[1]
