"""The demo's progress printer and failure report, on a recorded history whose Discover failed."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from harness.collector_demo import print_failure
from harness.executions import Progress, follow
from lambdas.collector.names import Layout

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ARN = "arn:aws:states:us-east-1:123456789012:execution:org-access-report-collector:demo-1"
NOT_IN_USE = "AWSOrganizationsNotInUseException"
MESSAGE = f"An error occurred ({NOT_IN_USE}) when calling the DescribeOrganization operation: not in an organization."
# The Catch's result (`$.error`): a Lambda error's Cause is the function's own error, as JSON.
CAUGHT = {"Error": NOT_IN_USE, "Cause": json.dumps({"errorType": NOT_IN_USE, "errorMessage": MESSAGE})}
RUN_FAILED = ("CollectorRunFailed", "a stage failed; see the SNS message")


# The printer reads S3 only for a finished execution's snapshot, which these histories never reach.
NO_S3 = cast("S3Client", None)


def entered(kind: str, name: str, state_input: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "stateEnteredEventDetails": {"name": name, "input": json.dumps(state_input)}}


def exited(kind: str, name: str, output: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "stateExitedEventDetails": {"name": name, "output": json.dumps(output)}}


# As moto's interpreter records it (tests/e2e and the demo see the same shapes).
FAILED_DISCOVER_HISTORY = [
    {"type": "ExecutionStarted", "executionStartedEventDetails": {"input": "{}"}},
    entered("TaskStateEntered", "Discover", {}),
    {"type": "TaskScheduled"},
    {"type": "TaskStarted"},
    {"type": "TaskFailed", "taskFailedEventDetails": {"error": CAUGHT["Error"], "cause": CAUGHT["Cause"]}},
    exited("TaskStateExited", "Discover", {"error": CAUGHT}),
    entered("TaskStateEntered", "NotifyFailure", {"error": CAUGHT}),
    {"type": "TaskScheduled"},
    {"type": "TaskStarted"},
    {"type": "TaskSucceeded"},
    exited("TaskStateExited", "NotifyFailure", {"error": CAUGHT}),
    entered("FailStateEntered", "Failed", {"error": CAUGHT}),
    {"type": "ExecutionFailed", "executionFailedEventDetails": {"error": RUN_FAILED[0], "cause": RUN_FAILED[1]}},
]
FAILURE_ALERT = {
    "Subject": "Org access report collector: run failed",
    "Message": json.dumps({"execution": ARN, "error": CAUGHT["Error"], "cause": CAUGHT["Cause"]}),
    "MessageAttributes": {"severity": {"Type": "String", "Value": "CRITICAL"}},
}


class RecordedStepFunctions:
    """Step Functions' answers about one execution that has already ended."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        started = datetime(2026, 11, 24, 3, 0, 0, tzinfo=UTC)
        return {
            "executionArn": executionArn,
            "status": "FAILED",
            "error": RUN_FAILED[0],
            "cause": RUN_FAILED[1],
            "startDate": started,
            "stopDate": started.replace(second=2),
        }

    def get_execution_history(self, executionArn: str, maxResults: int) -> dict[str, Any]:
        return {"events": self.events}


def test_a_failed_discover_is_printed_with_its_error_and_the_failure_path() -> None:
    printed = io.StringIO()
    progress = Progress(printed, s3=NO_S3, bucket="collector-data", layout=Layout())

    execution = follow(RecordedStepFunctions(FAILED_DISCOVER_HISTORY), ARN, progress)

    lines = [line.split("] ", 1)[1] for line in printed.getvalue().splitlines()]
    assert lines == [
        "state Discover",
        f"Discover failed: {NOT_IN_USE}: {MESSAGE}",
        "state NotifyFailure",
        "state Failed",
    ]
    assert (execution.status, execution.error, execution.run) == ("FAILED", RUN_FAILED[0], {})
    assert execution.states_entered == ["Discover", "NotifyFailure", "Failed"]
    assert execution.wall_seconds == 2.0


def test_a_failed_run_reports_the_executions_error_and_the_alert_it_published() -> None:
    progress = Progress(io.StringIO(), s3=NO_S3, bucket="collector-data", layout=Layout())
    execution = follow(RecordedStepFunctions(FAILED_DISCOVER_HISTORY), ARN, progress)
    printed = io.StringIO()

    print_failure(execution, [FAILURE_ALERT], printed)

    text = printed.getvalue()
    assert f"error: {RUN_FAILED[0]}\n  cause: {RUN_FAILED[1]}" in text
    assert "Subject: Org access report collector: run failed" in text
    assert 'Attributes: {"severity": "CRITICAL"}' in text
    assert NOT_IN_USE in text.split("Attributes:")[1]  # the message names the stage's error


def test_a_failed_run_without_an_alert_says_nothing_was_published() -> None:
    progress = Progress(io.StringIO(), s3=NO_S3, bucket="collector-data", layout=Layout())
    execution = follow(RecordedStepFunctions(FAILED_DISCOVER_HISTORY), ARN, progress)
    printed = io.StringIO()

    print_failure(execution, [], printed)

    assert "(nothing published)" in printed.getvalue()
