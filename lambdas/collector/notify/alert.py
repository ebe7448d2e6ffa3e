"""alert: the day's snapshot compared with the one before it, and at most one SNS message about it.

Reads only the columns the findings need from `access_details` and `report_jobs` of the run's
`dt`, `access_details` of the latest earlier `dt` that has a partition, and the day's guardrail
proposals. The findings become metrics on every run; the message is published only when
`should_publish` says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.collector.config import AlertSettings
from lambdas.collector.errors import AlertDeliveryError
from lambdas.collector.guardrails.daily import proposal_lines
from lambdas.collector.insight.unused import ACCESS_COLUMNS, JOB_COLUMNS, PREVIOUS_COLUMNS, Findings, find_unused
from lambdas.collector.models import AlertEvent, AlertResult, RunContext
from lambdas.collector.names import Metric
from lambdas.collector.notify.alert_message import (
    AlertMessage,
    Guardrails,
    Severity,
    compose,
    severity_of,
    should_publish,
)
from lambdas.collector.observability import count, logger
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS
from lambdas.collector.store.storage import latest_before, read_snapshot

if TYPE_CHECKING:  # the boto3 stubs are a development dependency, never bundled
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient


def send_alert(event: AlertEvent, settings: AlertSettings, s3: S3Client, sns: SNSClient) -> AlertResult:
    run = event.run
    current, previous, jobs = _snapshots(s3, run)
    findings = find_unused(
        current,
        previous,
        jobs,
        as_of=run.collected_at,  # not "now": a re-run of the alert finds the same
        unused_after_days=settings.unused_after_days,
        allowlist=frozenset(settings.allowlist),
        allowlist_by_target={target: frozenset(names) for target, names in settings.allowlist_by_target.items()},
        # The message never lists unused services one by one (the report page and Athena do): keep none.
        services_per_target=0,
        stale_after_days=run.stale_after_days,
    )
    count(Metric.UNUSED_SERVICES, findings.unused_services)
    count(Metric.NEWLY_UNUSED_SERVICES, findings.newly_unused_services)
    guardrails = _guardrails(s3, event)
    severity = severity_of(findings, guardrails, event.report)
    result = _result(findings, severity, None, None)
    if should_publish(
        findings,
        min_unused=settings.alert_min_unused,
        always_send_summary=settings.always_send_summary,
        guardrails=guardrails,
        report=event.report,
    ):
        message = compose(
            findings,
            organization_id=run.organization_id,
            dt=run.dt,
            run_id=run.run_id,
            max_targets=settings.alert_max_targets,
            top_services=settings.alert_top_services,
            reporter_role=run.report_role_arn,
            guardrails=guardrails,
            report=event.report,
        )
        result = _result(findings, severity, message, _publish(sns, settings.alert_topic_arn, message))
    return result


def _guardrails(s3: S3Client, event: AlertEvent) -> Guardrails | None:
    outcome = event.guardrails
    if outcome.error:
        return Guardrails(error=outcome.error)
    if outcome.summary is None:  # not asked of this run
        return None
    return Guardrails(lines=tuple(proposal_lines(s3, event.run)), location=outcome.summary.location)


def _snapshots(s3: S3Client, run: RunContext) -> tuple[pa.Table, pa.Table | None, pa.Table]:
    bucket, layout, dt = run.bucket, run.layout, run.dt
    current = read_snapshot(s3, bucket, layout, ACCESS_DETAILS, dt, columns=ACCESS_COLUMNS)
    jobs = read_snapshot(s3, bucket, layout, REPORT_JOBS, dt, columns=JOB_COLUMNS)
    before = latest_before(s3, bucket, layout, ACCESS_DETAILS, dt)
    previous = read_snapshot(s3, bucket, layout, ACCESS_DETAILS, before, columns=PREVIOUS_COLUMNS) if before else None
    logger.info(
        "Snapshots read", extra={"dt": dt, "rows": current.num_rows, "jobs": jobs.num_rows, "previous_dt": before}
    )
    return current, previous, jobs


def _publish(sns: SNSClient, topic_arn: str, message: AlertMessage) -> str:
    try:
        response = sns.publish(
            TopicArn=topic_arn, Subject=message.subject, Message=message.body, MessageAttributes=message.attributes
        )
    except ClientError as error:
        details = error.response.get("Error", {})
        raise AlertDeliveryError(
            f"SNS Publish to {topic_arn} failed: {details.get('Code', 'ClientError')}: {details.get('Message', '')}"
        ) from error
    except BotoCoreError as error:
        raise AlertDeliveryError(f"SNS Publish to {topic_arn} failed: {error}") from error
    return str(response["MessageId"])


def _result(
    findings: Findings, severity: Severity, message: AlertMessage | None, message_id: str | None
) -> AlertResult:
    return AlertResult(
        published=message_id is not None,
        message_id=message_id,
        severity=severity.value,
        targets_with_unused=findings.targets_with_unused,
        unused_services=findings.unused_services,
        newly_unused_services=findings.newly_unused_services,
        problem_jobs=findings.problem_jobs,
        message_bytes=message.size_bytes if message else 0,
    )
