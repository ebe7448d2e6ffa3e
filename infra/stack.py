"""The collector's stack: it only composes the constructs, wiring names and grants between them."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.alerting import Alerting
from infra.analytics import Analytics
from infra.config import CollectorConfig
from infra.functions import Functions, FunctionSpec
from infra.limits import Limits
from infra.monitoring import Monitoring
from infra.reporter_role import ReporterRole
from infra.schedule import Schedule
from infra.storage import Storage
from infra.workflow import Workflow
from lambdas.collector.config import BY_FUNCTION
from lambdas.collector.names import REPORTING, Function
from lambdas.collector.settings import LOG_RETENTION, environment

# What each function does, its memory (MB) and timeout (minutes); its environment derives from its
# settings model (`lambdas.collector.config.BY_FUNCTION`).
_FUNCTIONS: dict[Function, tuple[str, int, int]] = {
    # 15 minutes: a 10,000-account walk fits while Organizations answers 4.3 calls/s or more (its rate is not
    # published; `tests/integration/test_fault_org_throttle.py`)
    Function.DISCOVER: ("Walks the organization and writes the run's manifest of target batches", 512, 15),
    Function.GENERATE: ("Starts the report jobs of a batch", 512, 10),
    Function.POLL: ("Polls a batch's report jobs and writes completed first pages", 512, 10),
    Function.FETCH: ("Follows the markers of truncated reports", 1024, 15),
    Function.FINALIZE: ("Writes the day's snapshot from the run's parts", 3008, 15),
    # recommend reads the day's access_details partition, as alert does (only the root and OU rows are kept)
    Function.RECOMMEND: ("Proposes guardrail SCPs that deny services unused in each root and OU", 3008, 10),
    Function.REPORT: ("Writes the day's report page (HTML: heatmap, trend, changes, proposals)", 3008, 10),
    Function.ALERT: ("Publishes unused and newly unused services and problem jobs", 3008, 10),
}


def function_specs(config: CollectorConfig) -> list[FunctionSpec]:
    return [
        FunctionSpec(
            function.value,
            description,
            memory,
            cdk.Duration.minutes(minutes),
            environment(BY_FUNCTION[function], config),
        )
        for function, (description, memory, minutes) in _FUNCTIONS.items()
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
            log_retention=retention,
        )
        limits = Limits(self, "Limits")
        reporting = [function.value for function in REPORTING]
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
            function.add_environment("LIMITS_TABLE", limits.table.table_name)
            function.add_to_role_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[reporter_arn]))
            storage.grant_scratch_write(functions.roles[name])
            limits.grant_learn(functions.roles[name])  # discover too: it measures the job cap before the lanes
        for name in (Function.GENERATE, Function.POLL, Function.FETCH):
            storage.grant_scratch_resume(functions.roles[name])
        functions["discover"].add_environment("DATA_BUCKET", storage.data_bucket.bucket_name)
        storage.grant_snapshot_read(functions.roles["discover"])  # the plan reads the latest days' report_jobs
        storage.grant_snapshot_write(functions.roles["finalize"])
        storage.grant_snapshot_write(functions.roles["recommend"])  # its partition and the day's JSON files
        storage.grant_snapshot_write(functions.roles["report"])  # the page and the day's unused_summary
        storage.grant_snapshot_read(functions.roles["alert"])
        functions["alert"].add_environment("ALERT_TOPIC_ARN", alerting.topic.topic_arn)
        alerting.grant_publish(functions.roles["alert"])

        workflow = Workflow(
            self,
            "Workflow",
            functions=functions.by_name,  # type: ignore[arg-type]
            data_bucket=storage.data_bucket,
            topic=alerting.topic,
            tolerated_failures=config.tolerated_failures,
            max_rounds=config.max_rounds,
            log_retention=retention,
        )
        alerting.grant_publish(workflow.state_machine.role)  # the failure notification
        # discover lists this state machine's running executions (one run at a time). In a policy of its
        # own: the role's default policy, which the function depends on and where the state machine's
        # grant() would write it, would close a cycle (the state machine names the function).
        iam.Policy(
            self,
            "DiscoverListsRuns",
            roles=[functions.roles[Function.DISCOVER]],
            statements=[
                iam.PolicyStatement(
                    actions=["states:ListExecutions"], resources=[workflow.state_machine.state_machine_arn]
                )
            ],
        )
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
