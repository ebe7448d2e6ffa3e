"""alert end to end under mock_aws: snapshots in S3, one SNS message, as an SQS subscriber receives it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from harness.clients import client
from lambdas.collector.config import AlertSettings, load
from lambdas.collector.errors import AlertDeliveryError
from lambdas.collector.models import AlertEvent, JobStatus, RunContext, SnapshotSummary
from lambdas.collector.names import Layout
from lambdas.collector.notify.alert import send_alert
from lambdas.collector.observability import metrics
from lambdas.collector.settings import Pace
from lambdas.collector.store.normalize import ColumnBuffer, JobContext
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS
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
    dt, run_id = f"{collected_at:%Y-%m-%d}", f"run-{collected_at:%Y%m%d}"
    layout = Layout(PREFIX)
    for dataset, table in ((ACCESS_DETAILS, rows.to_table()), (REPORT_JOBS, records.to_table())):
        put_table(s3, BUCKET, layout.snapshot_file(dataset, dt, run_id, 0), table)


def alert_event(problems: int = 0) -> AlertEvent:
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
    return AlertEvent(run=run, snapshot=snapshot)


def received(queue_url: str) -> list[dict[str, Any]]:
    messages = client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(message["Body"]) for message in messages.get("Messages", [])]


def all_in_use(s3: Any) -> None:
    uses = [(PROD, "s3", AS_OF - DAY), (SANDBOX, "ec2", AS_OF - 10 * DAY)]
    write_snapshot(s3, AS_OF, uses, [(PROD, JobStatus.COMPLETED, None), (SANDBOX, JobStatus.COMPLETED, None)])


def test_unused_newly_unused_and_failed_jobs_reach_a_subscriber_in_one_message(
    s3: Any, topic: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic_arn, queue_url = topic
    # Given the day before: Prod used s3 then (90.5 days before today), sqs and ec2 unused
    s3_last_used = AS_OF - timedelta(days=90, hours=12)
    write_snapshot(s3, AS_OF - DAY, [(PROD, "s3", s3_last_used), (PROD, "sqs", None), (PROD, "ec2", None)])
    # And an older day when Prod used sqs, and a later day when it used ec2: neither is "the previous snapshot"
    write_snapshot(s3, AS_OF - 4 * DAY, [(PROD, "sqs", AS_OF - 5 * DAY)])
    write_snapshot(s3, AS_OF + DAY, [(PROD, "ec2", AS_OF)])
    # And today: s3, sqs and ec2 unused, iam in use, gamelift unused but allowlisted; Sandbox's job failed
    today: list[Use] = [(PROD, namespace, None) for namespace in ("sqs", "ec2", "gamelift")]
    today += [(PROD, "s3", s3_last_used), (PROD, "iam", AS_OF - DAY)]
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
    # And exactly one message arrived, with the subject, the body and the attributes a filter policy reads
    (envelope,) = received(queue_url)
    assert envelope["MessageId"] == result.message_id
    assert envelope["Subject"] == f"Org access {ORG} {DT}: 3 unused on 1 target, 1 newly unused, 1 failed job"
    body = envelope["Message"]
    assert result.message_bytes >= len(body.encode())
    assert (
        f"- FAILED Sandbox (ACCOUNT 222222222222, all SCPs)\n    {SANDBOX}\n    AccessDenied: AccessDenied on" in body
    )
    assert (
        f"Prod (ACCOUNT 111111111111, all SCPs)\n  path: {PROD}\n  3 unused, 1 newly unused\n  newly unused: s3\n"
        in body
    )
    assert "  - Service s3 (s3): last used 2026-08-25 (90 days ago)" in body
    assert "gamelift" not in body
    assert "(iam)" not in body
    assert {name: (value["Type"], value["Value"]) for name, value in envelope["MessageAttributes"].items()} == {
        "severity": ("String", "CRITICAL"),
        "unused_services": ("Number", "3"),
        "newly_unused_services": ("Number", "1"),
        "problem_jobs": ("Number", "1"),
        "targets_with_unused": ("Number", "1"),
        "organization_id": ("String", ORG),
        "dt": ("String", DT),
    }
    # And the counts went to metrics
    assert metrics.metric_set["UnusedServices"]["Value"] == [3.0]
    assert metrics.metric_set["NewlyUnusedServices"]["Value"] == [1.0]


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
    assert envelope["Subject"] == f"Org access {ORG} {DT}: nothing to report"
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
