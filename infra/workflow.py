"""The collector's state machine, readable in one place.

    Discover ─► OneRunAtATime?
                  skipped (another run in progress) ─► SkippedAnotherRunInProgress (Succeed: no IAM
                        call, nothing written; discover logged the run in progress, metric `RunsSkipped`)
                  otherwise
             ─► CollectBatches: Distributed Map over the manifest's batches (S3)
                  per batch: Generate ─► BatchProgress?
                    truncated ─► Fetch ─► BatchProgress?
                    pending, a job due now ─► Poll ─► BatchProgress?
                    pending ───► WaitForReports (SecondsPath) ─► Poll ─► BatchProgress?
                    too many rounds ─► BatchLoopBound (Fail: the batch fails; past `tolerated_failures`
                                       failed batches the run fails, else finalize records the
                                       batch's targets NOT_COLLECTED)
                    otherwise ─► BatchDone
             ─► Finalize ─► Recommend ─► Report ─► Alert ─► Done
                              error ─► RecommendFailed (Pass: no recommendations today; the alert says why)
                                        ─► Report
                                          error ─► ReportFailed (Pass: no page today; the alert says why)
                                                    ─► Alert
    any other stage's error ─► NotifyFailure (SNS) ─► Failed

The manifest is already batched (moto's interpreter, which runs this very definition offline, does
not parse ItemBatcher), and failures are tolerated by count (it rejects an integer percentage).
Execution state stays small: {"skipped", "run", "finalize", "recommend", "report", "alert"}; pages never
travel through it. Guardrail recommendations and the report page are views beside the day's data: their
failure must not cost the day's alert, so each is caught and the alert carries the error instead.

An overlap ends in a Succeed, not a Fail: the schedule may start a run while a long one is still going
(expected, and the running one collects the day), and a Fail would trip the failed-executions alarm and
send the "run failed" notification for a run that did nothing wrong. discover returns it as a result,
not an error, so the discover function's error alarm stays quiet too.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.log_groups import encrypted_log_group
from infra.nag import acknowledge, resource_finding
from lambdas.collector.settings import RUN_BUDGET_MAX_SECONDS, RUN_FINISH_SECONDS

LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    # The invoke call itself timed out on the Step Functions side: transient as the others.
    "Lambda.ClientExecutionTimeoutException",
]
# In every "run failed" message: the collector's own errors say what to fix in their cause; then a rerun
# (README, "Starting a failed run again"; a redrive would only re-enter the Failed state).
RERUN_ADVICE = (
    "Fix what the error and cause name (README, Failure modes), then start the run again the same day as a new "
    "execution with this execution's input: aws stepfunctions start-execution --state-machine-arn <the state "
    'machine> --input "$(aws stepfunctions describe-execution --execution-arn <execution> --query input '
    '--output text)". Nothing a query reads was left half-written.'
)
# The handlers' own transient errors, retried by name.
TRANSIENT_ERRORS = ["ReportSessionError", "AlertDeliveryError"]
# An invocation killed by Lambda: its timeout, or its runtime crashing or running out of memory (named
# so by the optimized integration; `Lambda.Unknown` where Step Functions cannot read the function's
# error). Retried on the batch stages, where a retry resumes from the killed attempt's checkpoint
# (`lambdas.collector.store.parts`), so it re-reads nothing written and never writes a row twice, and on
# finalize, which writes fixed keys only after reading everything (`lambdas.collector.store.snapshot`).
KILLED_ERRORS = ["Sandbox.Timedout", "Runtime.ExitError", "Runtime.OutOfMemory", "Lambda.Unknown"]


def _invoke(
    scope: Construct,
    name: str,
    function: lambda_.IFunction,
    payload: sfn.TaskInput,
    *,
    result_selector: dict[str, object] | None = None,
    result_path: str | None = None,
    output_path: str | None = None,
) -> tasks.LambdaInvoke:
    task = tasks.LambdaInvoke(
        scope,
        name,
        lambda_function=function,
        payload=payload,
        retry_on_service_exceptions=False,  # retried below, with jitter
        result_selector=result_selector,
        result_path=result_path,
        output_path=output_path,
    )
    task.add_retry(
        errors=LAMBDA_SERVICE_ERRORS,
        interval=cdk.Duration.seconds(2),
        max_attempts=6,
        backoff_rate=2,
        jitter_strategy=sfn.JitterType.FULL,
    )
    task.add_retry(errors=TRANSIENT_ERRORS, interval=cdk.Duration.seconds(5), max_attempts=3, backoff_rate=2)
    return task


def _retry_killed(task: tasks.LambdaInvoke) -> None:
    """Retry an invocation Lambda killed: for a stage a retry resumes (batch stages) or redoes (finalize)."""
    task.add_retry(
        errors=KILLED_ERRORS,
        interval=cdk.Duration.seconds(5),
        max_attempts=3,
        backoff_rate=2,
        jitter_strategy=sfn.JitterType.FULL,
    )


class Workflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: dict[str, lambda_.IFunction],
        data_bucket: s3.IBucket,
        topic: sns.ITopic,
        tolerated_failures: int,
        max_rounds: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        batch = self._batch(functions, max_rounds)

        discover = _invoke(
            self,
            "Discover",
            functions["discover"],
            sfn.TaskInput.from_object(
                {
                    "run_id": sfn.JsonPath.string_at("$$.Execution.Name"),
                    "started_at": sfn.JsonPath.string_at("$$.Execution.StartTime"),
                    "state_machine_arn": sfn.JsonPath.string_at("$$.StateMachine.Id"),
                    "execution_arn": sfn.JsonPath.string_at("$$.Execution.Id"),
                    "options": sfn.JsonPath.object_at("$"),
                }
            ),
            # {"skipped": false, "run": …}, or {"skipped": true, "run_in_progress": …}: a flag always
            # there (a Choice on a path that may be absent makes moto's interpreter log an error)
            output_path="$.Payload",
        )
        collect = sfn.DistributedMap(
            self,
            "CollectBatches",
            item_reader=sfn.S3JsonItemReader(bucket=data_bucket, key=sfn.JsonPath.string_at("$.run.manifest_key")),
            item_selector={"run.$": "$.run", "batch.$": "$$.Map.Item.Value"},
            # As many lanes as discover decided: IAM's admitted job cap, up to `max_concurrency`.
            max_concurrency_path="$.run.lanes",
            tolerated_failure_count=tolerated_failures,
            result_path=sfn.JsonPath.DISCARD,
            map_execution_type=sfn.StateMachineType.STANDARD,
        )
        collect.item_processor(batch)
        finalize = _invoke(
            self,
            "Finalize",
            functions["finalize"],
            sfn.TaskInput.from_object({"run": sfn.JsonPath.object_at("$.run")}),
            result_selector={"summary.$": "$.Payload"},
            result_path="$.finalize",
        )
        _retry_killed(finalize)  # nothing reaches S3 before all is read, and every file's key is fixed
        recommend = _invoke(
            self,
            "Recommend",
            functions["recommend"],
            sfn.TaskInput.from_object({"run": sfn.JsonPath.object_at("$.run")}),
            result_selector={"summary.$": "$.Payload", "error": ""},
            result_path="$.recommend",
        )
        recommend_failed = sfn.Pass(
            self,
            "RecommendFailed",
            parameters={"error.$": "$.recommend_error.Error"},
            result_path="$.recommend",
        )
        recommend.add_catch(recommend_failed, errors=["States.ALL"], result_path="$.recommend_error")
        report = _invoke(
            self,
            "Report",
            functions["report"],
            sfn.TaskInput.from_object(
                {"run": sfn.JsonPath.object_at("$.run"), "guardrails": sfn.JsonPath.object_at("$.recommend")}
            ),
            result_selector={"page.$": "$.Payload", "error": ""},
            result_path="$.report",
        )
        report_failed = sfn.Pass(
            self, "ReportFailed", parameters={"error.$": "$.report_error.Error"}, result_path="$.report"
        )
        report.add_catch(report_failed, errors=["States.ALL"], result_path="$.report_error")
        alert = _invoke(
            self,
            "Alert",
            functions["alert"],
            sfn.TaskInput.from_object(
                {
                    "run": sfn.JsonPath.object_at("$.run"),
                    "snapshot": sfn.JsonPath.object_at("$.finalize.summary"),
                    "guardrails": sfn.JsonPath.object_at("$.recommend"),
                    "report": sfn.JsonPath.object_at("$.report"),
                }
            ),
            result_selector={"result.$": "$.Payload"},
            result_path="$.alert",
        )
        failure = tasks.SnsPublish(
            self,
            "NotifyFailure",
            topic=topic,
            subject="Org access report collector: run failed",
            message=sfn.TaskInput.from_object(
                {
                    "execution": sfn.JsonPath.string_at("$$.Execution.Id"),
                    "error": sfn.JsonPath.string_at("$.error.Error"),
                    "cause": sfn.JsonPath.string_at("$.error.Cause"),
                    "what_to_do": RERUN_ADVICE,
                }
            ),
            message_attributes={"severity": tasks.MessageAttribute(value="CRITICAL")},
            result_path=sfn.JsonPath.DISCARD,
        )
        # The one message that says the run failed must not be lost to a throttled or briefly failing SNS.
        failure.add_retry(
            errors=["States.ALL"],
            interval=cdk.Duration.seconds(2),
            max_attempts=4,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        failure.next(sfn.Fail(self, "Failed", error="CollectorRunFailed", cause="a stage failed; see the SNS message"))
        for state in (discover, collect, finalize, alert):
            state.add_catch(failure, errors=["States.ALL"], result_path="$.error")

        collect.next(finalize).next(recommend).next(report).next(alert).next(sfn.Succeed(self, "Done"))
        recommend_failed.next(report)
        report_failed.next(alert)
        one_run = (
            sfn.Choice(self, "OneRunAtATime")
            .when(
                sfn.Condition.boolean_equals("$.skipped", True),
                sfn.Succeed(
                    self, "SkippedAnotherRunInProgress", comment="another run of this state machine is in progress"
                ),
            )
            .otherwise(collect)
        )
        definition = discover.next(one_run)

        self.log_group = encrypted_log_group(self, "ExecutionLogs", retention=log_retention)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            # Above the largest run budget (a per-run override included) and what follows it.
            timeout=cdk.Duration.seconds(RUN_BUDGET_MAX_SECONDS + RUN_FINISH_SECONDS),
        )
        self._acknowledge(functions, data_bucket)

    def _acknowledge(self, functions: dict[str, lambda_.IFunction], data_bucket: s3.IBucket) -> None:
        """The wildcards CDK's task and map integrations write into the state machine's policies."""
        stack = cdk.Stack.of(self)
        # As CDK's DistributedMap writes them: the name cut from the state machine's ARN.
        name = cdk.Fn.select(6, cdk.Fn.split(":", self.state_machine.state_machine_arn))
        executions = stack.format_arn(
            service="states", resource="execution", resource_name=name, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
        )
        acknowledge(
            self.state_machine,
            {
                "IAM5[Resource::*]": "X-Ray (PutTraceSegments, PutTelemetryRecords, GetSampling*) and CloudWatch "
                "Logs vended delivery (CreateLogDelivery, ...) have no resource-level permissions",
                **{
                    resource_finding(self, f"{function.function_arn}:*"): "CDK's LambdaInvoke grant: the "
                    "function's versions and aliases (ARN:qualifier); the function itself is named"
                    for function in functions.values()
                },
                resource_finding(
                    self, f"arn:{stack.partition}:s3:::{data_bucket.bucket_name}/*"
                ): "Distributed Map ItemReader: "
                "s3:GetObject of the run's manifest, whose key is chosen per run; the data bucket only",
                resource_finding(self, f"{executions}:*"): "Distributed Map: this state machine "
                "describes and stops its own child executions",
                resource_finding(self, f"{executions}/*:*"): "Distributed Map: this state machine's own "
                "child executions (map run executions)",
            },
        )

    def _batch(self, functions: dict[str, lambda_.IFunction], max_rounds: int) -> sfn.IChainable:
        """One child execution: a batch's jobs from start to last page."""
        # Each stage's input is the previous one's output: {"run", "batch"} first, then the BatchState.
        generate, poll, fetch = (
            _invoke(self, name, functions[name.lower()], sfn.TaskInput.from_json_path_at("$"), output_path="$.Payload")
            for name in ("Generate", "Poll", "Fetch")
        )
        for task in (generate, poll, fetch):
            _retry_killed(task)
        wait = sfn.Wait(self, "WaitForReports", time=sfn.WaitTime.seconds_path("$.wait_seconds"))
        progress = (
            sfn.Choice(self, "BatchProgress")
            .when(
                sfn.Condition.number_greater_than_equals("$.round", max_rounds),
                sfn.Fail(self, "BatchLoopBound", error="BatchLoopBound", cause="the batch exceeded its rounds"),
            )
            .when(sfn.Condition.number_greater_than("$.truncated", 0), fetch)
            .when(
                sfn.Condition.and_(
                    sfn.Condition.number_greater_than("$.pending", 0),
                    sfn.Condition.number_equals("$.wait_seconds", 0),
                ),
                poll,
            )
            .when(sfn.Condition.number_greater_than("$.pending", 0), wait.next(poll))
            .otherwise(sfn.Succeed(self, "BatchDone"))
        )
        poll.next(progress)
        fetch.next(progress)
        return generate.next(progress)
