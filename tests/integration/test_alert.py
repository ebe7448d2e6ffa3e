"""alert end to end under mock_aws: snapshots in S3, one SNS message, as an SQS subscriber receives it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from harness.clients import client
from lambdas.collector.config import AlertSettings, load
from lambdas.collector.errors import AlertDeliveryError
from lambdas.collector.models import (
    AlertEvent,
    GuardrailSummary,
    JobStatus,
    PageOutcome,
    RecommendOutcome,
    ReportPage,
    RunContext,
    SnapshotSummary,
)
from lambdas.collector.names import Layout
from lambdas.collector.notify.alert import send_alert
from lambdas.collector.notify.fixes import FIXES, SOME_REPORTER_ROLE
from lambdas.collector.observability import metrics
from lambdas.collector.settings import Pace
from lambdas.collector.store.normalize import ColumnBuffer, JobContext
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS, SCP_RECOMMENDATIONS
from lambdas.collector.store.storage import put_table
from tests.helpers import job_context

BUCKET, PREFIX = "org-access-data", "reports/"
ORG = "o-abcdefghij"
OU = f"{ORG}/r-ab12/ou-ab12-cdefghij"
PROD, SANDBOX = f"{OU}/111111111111", f"{OU}/222222222222"
AS_OF = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
DAY = timedelta(days=1)
DT = "2026-11-24"

Use = tuple[str, str, datetime | None]  # target path, namespace, last used


@pytest.fixture
def s3(aws: None) -> Any:
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


@pytest.fixture
def topic(aws: None) -> tuple[str, str]:
    """A topic and the URL of an SQS queue subscribed to it with the JSON envelope (RawMessageDelivery false)."""
    sns, sqs = client("sns"), client("sqs")
    topic_arn = sns.create_topic(Name="org-access-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alert-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "false"})
    return topic_arn, queue_url


@pytest.fixture(autouse=True)
def _fresh_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def settings_for(monkeypatch: pytest.MonkeyPatch, topic_arn: str, **env: str) -> AlertSettings:
    values = {"ALERT_TOPIC_ARN": topic_arn, **env}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return load(AlertSettings)


def context(path: str, collected_at: datetime) -> JobContext:
    return job_context(
        path, collected_at=collected_at, run_id=f"run-{collected_at:%Y%m%d}", name="Prod" if path == PROD else "Sandbox"
    )


def write_snapshot(
    s3: Any, collected_at: datetime, uses: Iterable[Use], jobs: Iterable[tuple[str, JobStatus, str | None]] = ()
) -> None:
    """Both datasets of a day, at the keys finalize writes them to."""
    rows, records = ColumnBuffer(ACCESS_DETAILS), ColumnBuffer(REPORT_JOBS)
    for path, namespace, when in uses:
        detail = {"ServiceName": f"Service {namespace}", "ServiceNamespace": namespace, "LastAuthenticatedTime": when}
        rows.add_access_details(context(path, collected_at), [detail])
    for path, status, error in jobs:
        record = {**context(path, collected_at).columns(), "job_status": status.value, "rows_written": 0}
        record.update(pages=0, iam_calls=1, error_code=error, error_message=error and f"{error} on {path}")
        records.add_row({**record, "services_accessible": None, "services_not_accessed": None})
    dt = f"{collected_at:%Y-%m-%d}"
    layout = Layout(PREFIX)
    for dataset, table in ((ACCESS_DETAILS, rows.to_table()), (REPORT_JOBS, records.to_table())):
        put_table(s3, BUCKET, layout.snapshot_file(dataset, dt, 0, 1), table)


def alert_event(
    problems: int = 0, guardrails: RecommendOutcome | None = None, report: PageOutcome | None = None
) -> AlertEvent:
    run = RunContext(
        run_id=f"run-{AS_OF:%Y%m%d}",
        dt=DT,
        collected_at=AS_OF,
        organization_id=ORG,
        bucket=BUCKET,
        prefix=PREFIX,
        manifest_key=f"{PREFIX}runs/run-{AS_OF:%Y%m%d}/manifest.json",
        targets=2,
        batches=1,
        polling=Pace().polling,
    )
    statuses = {JobStatus.COMPLETED: 2 - problems, JobStatus.FAILED: problems}
    snapshot = SnapshotSummary(
        run_id=run.run_id,
        dt=DT,
        targets=2,
        jobs_by_status=statuses,
        rows=4,
        carried_over_targets=0,
        files={},
        replaced_files=0,
    )
    return AlertEvent(
        run=run, snapshot=snapshot, guardrails=guardrails or RecommendOutcome(), report=report or PageOutcome()
    )


def received(queue_url: str) -> list[dict[str, Any]]:
    messages = client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(message["Body"]) for message in messages.get("Messages", [])]


def all_in_use(s3: Any) -> None:
    uses = [(PROD, "s3", AS_OF - DAY), (SANDBOX, "ec2", AS_OF - 10 * DAY)]
    write_snapshot(s3, AS_OF, uses, [(PROD, JobStatus.COMPLETED, None), (SANDBOX, JobStatus.COMPLETED, None)])


def test_what_changed_and_failed_jobs_reach_a_subscriber_in_one_message(
    s3: Any, topic: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic_arn, queue_url = topic
    # Given the day before: Prod used s3 then (90.5 days before today), sqs, ec2 and kafka unused
    s3_last_used = AS_OF - timedelta(days=90, hours=12)
    yesterday = [(PROD, "s3", s3_last_used), *((PROD, namespace, None) for namespace in ("sqs", "ec2", "kafka"))]
    write_snapshot(s3, AS_OF - DAY, yesterday)
    # And an older day when Prod used sqs, and a later day when it used ec2: neither is "the previous snapshot"
    write_snapshot(s3, AS_OF - 4 * DAY, [(PROD, "sqs", AS_OF - 5 * DAY)])
    write_snapshot(s3, AS_OF + DAY, [(PROD, "ec2", AS_OF)])
    # And today: s3, sqs and ec2 unused, iam and kafka in use, gamelift unused but allowlisted; Sandbox's job failed
    today: list[Use] = [(PROD, namespace, None) for namespace in ("sqs", "ec2", "gamelift")]
    today += [(PROD, "s3", s3_last_used), (PROD, "iam", AS_OF - DAY), (PROD, "kafka", AS_OF - DAY)]
    write_snapshot(s3, AS_OF, today, [(PROD, JobStatus.COMPLETED, None), (SANDBOX, JobStatus.FAILED, "AccessDenied")])
    settings = settings_for(monkeypatch, topic_arn, ALLOWLIST='["gamelift"]')
    # When
    result = send_alert(alert_event(problems=1), settings, s3, client("sns"))
    # Then the result counts what was found and what was sent
    assert result.model_dump(exclude={"message_id", "message_bytes"}) == {
        "published": True,
        "severity": "CRITICAL",
        "targets_with_unused": 1,
        "unused_services": 3,
        "newly_unused_services": 1,
        "problem_jobs": 1,
    }
    # And exactly one message arrived, its subject saying what changed and failed
    (envelope,) = received(queue_url)
    assert envelope["MessageId"] == result.message_id
    assert envelope["Subject"] == "1 service newly unused in Prod account; 1 failure"
    body = envelope["Message"]
    assert result.message_bytes >= len(body.encode())
    # And the body says what changed, what to do about the failed job, and where the unused services are
    assert "\n- Prod (account 111111111111): 1 newly unused: s3; 1 newly used: kafka\n" in body
    assert (
        "\n- AccessDenied: 1 report job FAILED, on Sandbox (222222222222). "
        f"IAM: AccessDenied on {SANDBOX}. Fix: {FIXES['AccessDenied'].replace('{role}', SOME_REPORTER_ROLE)}\n"
    ) in body
    assert "\n- Prod (account 111111111111): 3 of 6 allowed services unused\n" in body
    assert body.index("WHAT CHANGED") < body.index("WHAT TO DO") < body.index("WHERE MOST IS UNUSED")
    assert "gamelift" not in body
    assert len(body.splitlines()) <= 60
    # And the attributes a filter policy reads
    assert {name: (value["Type"], value["Value"]) for name, value in envelope["MessageAttributes"].items()} == {
        "severity": ("String", "CRITICAL"),
        "unused_services": ("Number", "3"),
        "newly_unused_services": ("Number", "1"),
        "newly_used_services": ("Number", "1"),
        "problem_jobs": ("Number", "1"),
        "targets_with_unused": ("Number", "1"),
        "new_guardrail_proposals": ("Number", "0"),
        "organization_id": ("String", ORG),
        "dt": ("String", DT),
    }
    # And the counts went to metrics
    assert metrics.metric_set["UnusedServices"]["Value"] == [3.0]
    assert metrics.metric_set["NewlyUnusedServices"]["Value"] == [1.0]


def write_proposal(s3: Any, new: int) -> GuardrailSummary:
    """The day's scp_recommendations: one proposal for the OU, `new` of its 3 services new today."""
    common = {
        "run_id": f"run-{AS_OF:%Y%m%d}",
        "collected_at": AS_OF,
        "organization_id": ORG,
        "target_path": OU,
        "target_type": "ORGANIZATIONAL_UNIT",
        "target_id": "ou-ab12-cdefghij",
        "target_name": "Workloads",
        "status": "PROPOSED",
        "window_days": 90,
        "accounts_in_scope": 2,
        "policy_name": "deny-unused-1",
        "policy_chars": 420,
    }
    rows = [
        {**common, "service_namespace": namespace, "change": "NEW" if n < new else "UNCHANGED"}
        for n, namespace in enumerate(("sqs", "ec2", "s3"))
    ]
    layout = Layout(PREFIX)
    table = pa.Table.from_pylist(rows, schema=SCP_RECOMMENDATIONS.arrow_schema)
    put_table(s3, BUCKET, f"{layout.partition(SCP_RECOMMENDATIONS, DT)}recommendations.parquet", table)
    location = f"s3://{BUCKET}/{layout.recommendations}dt={DT}/"
    return GuardrailSummary(
        dt=DT,
        targets=1,
        by_status={"PROPOSED": 1},
        policies=1,
        services=3,
        new=new,
        withdrawn=0,
        expired_exceptions=0,
        location=location,
    )


def report_page() -> ReportPage:
    key = f"{PREFIX}reports/dt={DT}/index.html"
    return ReportPage(
        dt=DT,
        key=key,
        latest_key=f"{PREFIX}reports/latest/index.html",
        uri=f"s3://{BUCKET}/{key}",
        console_url=f"https://s3.console.aws.amazon.com/s3/object/{BUCKET}?prefix={key}",
        bytes=10_000,
        render_seconds=0.2,
    )


def test_new_guardrail_proposals_alert_with_the_report_page_even_below_the_unused_threshold(
    s3: Any, topic: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic_arn, queue_url = topic
    # Given two unused services (below a threshold of three), no previous day, and an OU proposal with 2 new services
    write_snapshot(s3, AS_OF, [(PROD, "s3", None), (PROD, "sqs", None)], [(PROD, JobStatus.COMPLETED, None)])
    summary = write_proposal(s3, new=2)
    settings = settings_for(monkeypatch, topic_arn, ALERT_MIN_UNUSED="3")
    # When
    event = alert_event(guardrails=RecommendOutcome(summary=summary), report=PageOutcome(page=report_page()))
    result = send_alert(event, settings, s3, client("sns"))
    # Then one notice is published: the proposal to review, where the page and the proposals are
    (envelope,) = received(queue_url)
    assert (result.published, result.severity) == (True, "NOTICE")
    assert envelope["Subject"] == "First snapshot: 2 unused services; 1 new guardrail proposal; 0 failures"
    body = envelope["Message"]
    assert (
        "\n- Review the guardrail for Workloads (OU ou-ab12-cdefghij): deny 3 services in 1 SCP "
        "(largest 420 chars); 2 new, 0 withdrawn\n"
    ) in body
    assert f"\nReport page: s3://{BUCKET}/{PREFIX}reports/dt={DT}/index.html\n  console: https://" in body
    assert f"\nGuardrail proposals: {summary.location}\n" in body
    assert envelope["MessageAttributes"]["new_guardrail_proposals"] == {"Type": "Number", "Value": "1"}
    # And without anything new in the proposal, the same day stays below the threshold: nothing is sent
    summary = write_proposal(s3, new=0)
    event = alert_event(guardrails=RecommendOutcome(summary=summary), report=PageOutcome(page=report_page()))
    assert not send_alert(event, settings, s3, client("sns")).published


def test_a_failed_guardrail_or_report_stage_alerts_even_on_a_quiet_day(
    s3: Any, topic: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic_arn, queue_url = topic
    # Given a day with nothing to report, but the guardrail and report stages failed
    all_in_use(s3)
    event = alert_event(
        guardrails=RecommendOutcome(error="States.TaskFailed"), report=PageOutcome(error="ReportRenderError")
    )
    # When
    result = send_alert(event, settings_for(monkeypatch, topic_arn), s3, client("sns"))
    # Then a warning says so
    (envelope,) = received(queue_url)
    assert (result.published, result.severity) == (True, "WARNING")
    assert envelope["Subject"] == "First snapshot: 0 unused services; guardrails failed; 2 failures"
    assert "\n- Guardrail recommendations failed (States.TaskFailed): none today\n" in envelope["Message"]
    assert "\nNo report page today: ReportRenderError\n" in envelope["Message"]


def test_nothing_unused_and_nothing_failed_sends_no_message(
    s3: Any, topic: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic_arn, queue_url = topic
    # Given a day on which every service was used and every job completed
    all_in_use(s3)
    # When
    result = send_alert(alert_event(), settings_for(monkeypatch, topic_arn), s3, client("sns"))
    # Then nothing is published, and the metrics still say zero
    assert (result.published, result.message_id, result.severity, result.message_bytes) == (False, None, "INFO", 0)
    assert received(queue_url) == []
    assert metrics.metric_set["UnusedServices"]["Value"] == [0.0]


def test_fewer_unused_services_than_the_threshold_send_no_message(
    s3: Any, topic: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic_arn, queue_url = topic
    # Given two unused services, no previous snapshot, and a threshold of three
    write_snapshot(s3, AS_OF, [(PROD, "s3", None), (PROD, "sqs", None)], [(PROD, JobStatus.COMPLETED, None)])
    settings = settings_for(monkeypatch, topic_arn, ALERT_MIN_UNUSED="3")
    # When
    result = send_alert(alert_event(), settings, s3, client("sns"))
    # Then they are counted, but not sent
    assert (result.published, result.unused_services, result.severity) == (False, 2, "NOTICE")
    assert received(queue_url) == []


def test_always_send_summary_sends_a_message_with_nothing_to_report(
    s3: Any, topic: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic_arn, queue_url = topic
    # Given a day with nothing to report, and summaries wanted
    all_in_use(s3)
    settings = settings_for(monkeypatch, topic_arn, ALWAYS_SEND_SUMMARY="true")
    # When
    result = send_alert(alert_event(), settings, s3, client("sns"))
    # Then one INFO message says so
    (envelope,) = received(queue_url)
    assert (result.published, result.severity) == (True, "INFO")
    assert envelope["Subject"] == "First snapshot: 0 unused services; 0 failures"
    assert "Nothing to report" in envelope["Message"]
    assert envelope["MessageAttributes"]["severity"] == {"Type": "String", "Value": "INFO"}


def test_a_topic_that_cannot_be_published_to_is_an_alert_delivery_error(
    s3: Any, topic: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic_arn, _ = topic
    # Given a failed job to report and a topic that does not exist
    write_snapshot(s3, AS_OF, [], [(PROD, JobStatus.FAILED, "AccessDenied")])
    settings = settings_for(monkeypatch, topic_arn.replace("org-access-alerts", "gone"))
    # When / Then
    with pytest.raises(AlertDeliveryError, match=r"SNS Publish to .*:gone failed: NotFound"):
        send_alert(alert_event(problems=1), settings, s3, client("sns"))


def test_an_empty_day_without_files_reports_nothing(
    s3: Any, topic: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic_arn, queue_url = topic
    # Given only a previous snapshot, nothing under today's partitions
    write_snapshot(s3, AS_OF - DAY, [(PROD, "s3", None)])
    # When
    result = send_alert(alert_event(), settings_for(monkeypatch, topic_arn), s3, client("sns"))
    # Then there is nothing to find
    assert (result.published, result.unused_services, result.problem_jobs) == (False, 0, 0)
    assert received(queue_url) == []
