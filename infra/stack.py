"""The collector's stack: it only composes the constructs, wiring names and grants between them."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.alerting import Alerting
from infra.analytics import Analytics
from infra.config import LOG_RETENTION, CollectorConfig
from infra.functions import Functions, FunctionSpec
from infra.monitoring import Monitoring
from infra.reporter_role import ReporterRole
from infra.schedule import Schedule
from infra.storage import Storage
from infra.workflow import Workflow


def function_specs(config: CollectorConfig) -> list[FunctionSpec]:
    return [
        FunctionSpec(
            "discover",
            "Walks the organization and writes the run's manifest of target batches",
            512,
            cdk.Duration.minutes(10),
            {
                "SCOPE": config.scope.value,
                "INCLUDE_IDS": ",".join(config.include_ids),
                "EXCLUDE_IDS": ",".join(config.exclude_ids),
                "POLICY_IDS": ",".join(config.policy_ids),
                "INCLUDE_MANAGEMENT_ACCOUNT": str(config.include_management_account).lower(),
                "BATCH_SIZE": str(config.batch_size),
                "IAM_CALLS_PER_SECOND": f"{config.iam_calls_per_second:g}",
                "MAX_CONCURRENCY": str(config.max_concurrency),
                "IAM_MAX_JOBS_IN_PROGRESS": str(config.iam_max_jobs_in_progress),
                "POLL_INITIAL_WAIT_SECONDS": str(config.poll_initial_wait_seconds),
                "POLL_MAX_WAIT_SECONDS": str(config.poll_max_wait_seconds),
                "POLL_MAX_ATTEMPTS": str(config.poll_max_attempts),
            },
        ),
        FunctionSpec("generate", "Starts the report jobs of a batch", 512, cdk.Duration.minutes(10)),
        FunctionSpec(
            "poll", "Polls a batch's report jobs and writes completed first pages", 512, cdk.Duration.minutes(10)
        ),
        FunctionSpec("fetch", "Follows the markers of truncated reports", 1024, cdk.Duration.minutes(15)),
        FunctionSpec("finalize", "Writes the day's snapshot from the run's parts", 3008, cdk.Duration.minutes(15)),
        FunctionSpec(
            "alert",
            "Publishes unused and newly unused services and problem jobs",
            3008,
            cdk.Duration.minutes(10),
            {
                "UNUSED_AFTER_DAYS": str(config.unused_after_days),
                "ALLOWLIST": ",".join(config.allowlist),
                "ALLOWLIST_BY_TARGET": json.dumps(config.allowlist_by_target),
                "ALWAYS_SEND_SUMMARY": str(config.always_send_summary).lower(),
                "ALERT_MIN_UNUSED": str(config.alert_min_unused),
                "ALERT_MAX_TARGETS": str(config.alert_max_targets),
                "ALERT_TOP_SERVICES": str(config.alert_top_services),
            },
        ),
    ]


class CollectorStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: CollectorConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        retention = logs.RetentionDays[LOG_RETENTION[config.log_retention_days]]
        storage = Storage(
            self,
            "Storage",
            data_prefix=config.data_prefix,
            scratch_days=config.scratch_days,
            retention_days=config.retention_days,
        )
        alerting = Alerting(self, "Alerting", emails=config.alert_emails)
        reporter_arn = config.reporter_role_arn
        functions = Functions(
            self,
            "Functions",
            specs=function_specs(config),
            environment={"DATA_BUCKET": storage.data_bucket.bucket_name, "DATA_PREFIX": config.data_prefix},
            log_retention=retention,
        )
        reporting = ("discover", "generate", "poll", "fetch")
        if reporter_arn is None:
            reporter = ReporterRole(
                self,
                "Reporter",
                trusted=iam.CompositePrincipal(
                    *(iam.ArnPrincipal(functions.roles[name].role_arn) for name in reporting)
                ),
            )
            reporter_arn = reporter.role.role_arn
        for name in reporting:
            function = functions[name]
            function.add_environment("REPORT_ROLE_ARN", reporter_arn)
            if config.external_id:
                function.add_environment("REPORT_EXTERNAL_ID", config.external_id)
            function.add_to_role_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[reporter_arn]))
            storage.grant_scratch_write(functions.roles[name])
        storage.grant_snapshot_write(functions.roles["finalize"])
        storage.grant_snapshot_read(functions.roles["alert"])
        functions["alert"].add_environment("ALERT_TOPIC_ARN", alerting.topic.topic_arn)
        alerting.grant_publish(functions.roles["alert"])

        workflow = Workflow(
            self,
            "Workflow",
            functions=functions.by_name,  # type: ignore[arg-type]
            data_bucket=storage.data_bucket,
            topic=alerting.topic,
            max_concurrency=config.max_concurrency,
            tolerated_failures=config.tolerated_failures,
            max_rounds=config.max_rounds,
            log_retention=retention,
        )
        alerting.grant_publish(workflow.state_machine.role)  # the failure notification
        schedule = Schedule(
            self,
            "Schedule",
            state_machine=workflow.state_machine,
            expression=config.schedule,
            time_zone=config.time_zone,
        )
        analytics = Analytics(
            self,
            "Analytics",
            data_bucket=storage.data_bucket,
            data_prefix=config.data_prefix,
            results_bucket=storage.results_bucket,
            bytes_scanned_cutoff=config.bytes_scanned_cutoff,
            database_name=config.database_name,
        )
        Monitoring(
            self,
            "Monitoring",
            state_machine=workflow.state_machine,
            functions=functions.all,
            topic=alerting.topic,
            dead_letter_queue=schedule.dead_letter_queue,
        )
        cdk.CfnOutput(self, "DataBucket", value=storage.data_bucket.bucket_name)
        cdk.CfnOutput(self, "StateMachineArn", value=workflow.state_machine.state_machine_arn)
        cdk.CfnOutput(self, "AlertTopicArn", value=alerting.topic.topic_arn)
        cdk.CfnOutput(self, "AthenaWorkgroup", value=analytics.workgroup_name)
        cdk.CfnOutput(self, "ReporterRoleArn", value=reporter_arn)
