"""The state machine definition as data: every state, retry, catch, the Wait's SecondsPath, the loop bound,
the item reader and concurrency."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from infra.workflow import KILLED_ERRORS, LAMBDA_SERVICE_ERRORS, Workflow
from lambdas.collector.names import Function
from lambdas.collector.settings import Pace, Selection
from tests.infra.synth import render

NAMES = tuple(Function)


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "Test")
    code = lambda_.Code.from_inline("def handler(event, context): return event")
    functions = {
        name: lambda_.Function(stack, name, runtime=lambda_.Runtime.PYTHON_3_13, handler="index.handler", code=code)
        for name in NAMES
    }
    Workflow(
        stack,
        "Workflow",
        functions=functions,  # type: ignore[arg-type]
        data_bucket=s3.Bucket(stack, "Data"),
        topic=sns.Topic(stack, "Topic"),
        tolerated_failures=2,
        max_rounds=123,
        log_retention=logs.RetentionDays.ONE_MONTH,
    )
    template = Template.from_stack(stack)
    machines = template.find_resources("AWS::StepFunctions::StateMachine")
    (machine,) = machines.values()
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
    assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ALL"
    return dict(json.loads(render(machine["Properties"]["DefinitionString"])))


def test_the_run_is_discover_map_finalize_recommend_alert(definition: dict[str, Any]) -> None:
    states = definition["States"]
    assert definition["StartAt"] == "Discover"
    assert states["Discover"]["Next"] == "OneRunAtATime"
    assert states["OneRunAtATime"]["Default"] == "CollectBatches"
    assert states["CollectBatches"]["Next"] == "Finalize"
    assert states["Finalize"]["Next"] == "Recommend"
    assert states["Recommend"]["Next"] == "Report"
    assert states["Report"]["Next"] == "Alert"
    assert states["Alert"]["Next"] == "Done"
    assert states["Alert"]["Parameters"]["Payload"] == {
        "run.$": "$.run",
        "snapshot.$": "$.finalize.summary",
        "guardrails.$": "$.recommend",
        "report.$": "$.report",
    }
    assert states["Discover"]["Parameters"]["Payload"] == {
        "run_id.$": "$$.Execution.Name",
        "started_at.$": "$$.Execution.StartTime",
        "state_machine_arn.$": "$$.StateMachine.Id",
        "execution_arn.$": "$$.Execution.Id",
        "options.$": "$",
    }
    # discover's answer is the state: {"skipped": false, "run": …} (or {"skipped": true, "run_in_progress": …})
    assert states["Discover"]["OutputPath"] == "$.Payload"
    assert "ResultPath" not in states["Discover"]
    assert "ResultSelector" not in states["Discover"]


def test_a_run_started_while_another_is_in_progress_ends_in_a_succeed_state_that_says_so(
    definition: dict[str, Any],
) -> None:
    states = definition["States"]
    assert states["OneRunAtATime"]["Type"] == "Choice"
    assert states["OneRunAtATime"]["Choices"] == [
        {"Variable": "$.skipped", "BooleanEquals": True, "Next": "SkippedAnotherRunInProgress"}
    ]
    # A Succeed: an overlap is expected, not a failure (no failed-execution alarm, no "run failed" message)
    assert states["SkippedAnotherRunInProgress"]["Type"] == "Succeed"
    assert "Catch" not in states["OneRunAtATime"]


def test_every_stage_retries_lambda_errors_with_jitter_and_catches_to_a_notification(
    definition: dict[str, Any],
) -> None:
    states = definition["States"]
    for name in ("Discover", "CollectBatches", "Finalize", "Alert"):
        assert states[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "NotifyFailure"}
        ]
    for name in ("Discover", "Finalize", "Alert"):
        retries = states[name]["Retry"]
        assert retries[0]["ErrorEquals"] == LAMBDA_SERVICE_ERRORS
        assert retries[0]["JitterStrategy"] == "FULL"
        assert retries[1]["ErrorEquals"] == ["ReportSessionError", "AlertDeliveryError"]
    assert "Lambda.ClientExecutionTimeoutException" in LAMBDA_SERVICE_ERRORS
    assert states["NotifyFailure"]["Next"] == "Failed"
    (retry,) = states["NotifyFailure"]["Retry"]  # the failure message is retried, not lost to a throttle
    assert (retry["ErrorEquals"], retry["MaxAttempts"], retry["JitterStrategy"]) == (["States.ALL"], 4, "FULL")
    assert states["Failed"]["Type"] == "Fail"


def test_a_recommend_or_report_failure_still_sends_the_days_alert_which_names_the_error(
    definition: dict[str, Any],
) -> None:
    states = definition["States"]
    recommend = states["Recommend"]
    assert recommend["Retry"][0]["ErrorEquals"] == LAMBDA_SERVICE_ERRORS
    assert recommend["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.recommend_error", "Next": "RecommendFailed"}
    ]
    assert recommend["ResultSelector"] == {"summary.$": "$.Payload", "error": ""}
    failed = states["RecommendFailed"]
    assert failed["Type"] == "Pass"
    assert failed["Parameters"] == {"error.$": "$.recommend_error.Error"}
    assert failed["ResultPath"] == "$.recommend"
    assert failed["Next"] == "Report"
    report = states["Report"]
    assert report["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.report_error", "Next": "ReportFailed"}]
    assert report["Parameters"]["Payload"] == {"run.$": "$.run", "guardrails.$": "$.recommend"}
    assert states["ReportFailed"]["Parameters"] == {"error.$": "$.report_error.Error"}
    assert (states["ReportFailed"]["ResultPath"], states["ReportFailed"]["Next"]) == ("$.report", "Alert")


def test_the_map_reads_batches_from_the_manifest_with_bounded_concurrency(definition: dict[str, Any]) -> None:
    collect = definition["States"]["CollectBatches"]
    assert collect["ItemReader"]["Resource"] == "arn:<AWS::Partition>:states:::s3:getObject"
    assert collect["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    assert collect["ItemReader"]["Parameters"]["Key.$"] == "$.run.manifest_key"
    assert collect["ItemSelector"] == {"run.$": "$.run", "batch.$": "$$.Map.Item.Value"}
    # The lanes discover decided (IAM's admitted job cap, up to `max_concurrency`), not a fixed number
    assert (collect["MaxConcurrencyPath"], collect["ToleratedFailureCount"]) == ("$.run.lanes", 2)
    assert "MaxConcurrency" not in collect
    assert "ItemBatcher" not in collect  # batches are in the manifest (moto's interpreter lacks ItemBatcher)
    assert collect["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}


def test_a_batch_loops_wait_poll_and_fetch_within_a_bound(definition: dict[str, Any]) -> None:
    batch = definition["States"]["CollectBatches"]["ItemProcessor"]
    states = batch["States"]
    assert batch["StartAt"] == "Generate"
    assert states["Generate"]["Next"] == states["Poll"]["Next"] == states["Fetch"]["Next"] == "BatchProgress"
    choices = states["BatchProgress"]["Choices"]
    assert choices[0] == {"Variable": "$.round", "NumericGreaterThanEquals": 123, "Next": "BatchLoopBound"}
    assert choices[1] == {"Variable": "$.truncated", "NumericGreaterThan": 0, "Next": "Fetch"}
    # A job due now goes straight to Poll (a Wait of 0 s would still cost a transition)
    assert choices[2] == {
        "And": [
            {"Variable": "$.pending", "NumericGreaterThan": 0},
            {"Variable": "$.wait_seconds", "NumericEquals": 0},
        ],
        "Next": "Poll",
    }
    assert choices[3] == {"Variable": "$.pending", "NumericGreaterThan": 0, "Next": "WaitForReports"}
    assert states["BatchProgress"]["Default"] == "BatchDone"
    assert states["WaitForReports"] == {"Type": "Wait", "SecondsPath": "$.wait_seconds", "Next": "Poll"}
    for name in ("Generate", "Poll", "Fetch"):
        assert states[name]["OutputPath"] == "$.Payload"
        assert states[name]["Parameters"]["Payload.$"] == "$"
        assert states[name]["Retry"][0]["ErrorEquals"] == LAMBDA_SERVICE_ERRORS


def test_a_run_of_the_largest_budget_ends_by_its_deadline_not_by_the_state_machines_timeout(
    definition: dict[str, Any],
) -> None:
    # The budget may be raised to its bound for one run; the jobs started just before the deadline are then
    # polled at most max_attempts times, max_wait apart, and finalize and alert follow.
    budget_bound = Selection.model_fields["run_budget_seconds"].metadata
    (largest,) = [constraint.le for constraint in budget_bound if hasattr(constraint, "le")]
    pace = Pace()
    last_job_given_up = largest + pace.poll_max_attempts * pace.poll_max_wait_seconds
    assert definition["TimeoutSeconds"] >= last_job_given_up + 3600
    # and the default budget leaves the next daily run its start
    assert Selection().run_budget_seconds + pace.poll_max_attempts * pace.poll_max_wait_seconds < 86_400


def test_a_killed_batch_stage_is_retried_with_jitter_a_bounded_number_of_times(definition: dict[str, Any]) -> None:
    # Issue 17, case 1: Lambda's timeout, a crash or running out of memory kills generate, poll or fetch;
    # the retry resumes from the killed attempt's checkpoint.
    states = definition["States"]["CollectBatches"]["ItemProcessor"]["States"]
    for name in ("Generate", "Poll", "Fetch"):
        killed = [retry for retry in states[name]["Retry"] if "Sandbox.Timedout" in retry["ErrorEquals"]]
        assert killed == [
            {
                "ErrorEquals": KILLED_ERRORS,
                "IntervalSeconds": 5,
                "MaxAttempts": 3,
                "BackoffRate": 2,
                "JitterStrategy": "FULL",
            }
        ]
        assert {"Runtime.ExitError", "Runtime.OutOfMemory"} <= set(KILLED_ERRORS)
        # Not the service errors' retrier: a killed attempt has its own, smaller bound.
        assert states[name]["Retry"][0]["ErrorEquals"] == LAMBDA_SERVICE_ERRORS
    finalize = [r for r in definition["States"]["Finalize"]["Retry"] if "Sandbox.Timedout" in r["ErrorEquals"]]
    assert [r["ErrorEquals"] for r in finalize] == [KILLED_ERRORS]  # it redoes: nothing uploaded before all is read
    for name in ("Discover", "Alert"):  # a kill there fails the run as before (a retried alert could go out twice)
        assert all("Sandbox.Timedout" not in retry["ErrorEquals"] for retry in definition["States"][name]["Retry"])
