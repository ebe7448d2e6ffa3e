"""Executions of the deployed state machine, started and followed to their end, as a person watches them.

`follow` prints each state entered and, while batches run, targets done out of the total; a run whose
Discover failed is reported with its error (there is no run then), a skipped run with the run in progress.
The handlers' logs and metrics go to a log stream, not to the terminal (`handler_output`).

`names_unnamed_executions` mends a gap of moto's interpreter for executions started from outside (the AWS
CLI on a kept-running demo): AWS names an execution started without a name with a UUID; moto names it None.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO
from unittest import mock

from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from harness.clients import client
from harness.histories import MapRunHistories
from harness.histories import transitions as count_transitions
from harness.runner import Deployment, InProcessLambdas
from lambdas.collector.names import SERVICE, Layout
from lambdas.collector.store.schema import REPORT_JOBS
from lambdas.collector.store.storage import get_table, list_keys

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass
class Execution:
    """An execution followed to its end."""

    arn: str
    status: str
    output: dict[str, Any]
    error: str | None
    cause: str | None
    wall_seconds: float
    events: list[dict[str, Any]]
    states_entered: list[str] = field(default_factory=list)
    child_events: list[dict[str, Any]] = field(default_factory=list)  # the batches' executions
    discovered: dict[str, Any] = field(default_factory=dict)  # the run Discover made, whatever came after

    @property
    def run(self) -> dict[str, Any]:
        """The run context: from the output, or as Discover made it (an execution that failed or timed
        out after Discover has no output)."""
        run: dict[str, Any] = self.output.get("run") or self.discovered
        return run


class Progress:
    """Prints states as they are entered and, while batches run, targets done out of the total; with a
    `clock` (a virtual one), the time on it since the start beside the real time."""

    def __init__(
        self, out: TextIO, s3: S3Client, bucket: str, layout: Layout, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.out, self.s3, self.bucket, self.layout = out, s3, bucket, layout
        self.started = time.monotonic()
        self.clock = clock
        self.started_at = clock() if clock else None
        self._rows: dict[str, int] = {}
        self._last = ""

    def say(self, text: str) -> None:
        stamp = f"{time.monotonic() - self.started:6.1f}s"
        if self.clock and self.started_at:
            stamp += f" | {str(self.clock() - self.started_at).split('.')[0]:>8} virtual"
        self.out.write(f"  [{stamp}] {text}\n")
        self.out.flush()

    def targets_done(self, run_id: str) -> int:
        """Finished jobs so far: rows of the run's report_jobs parts (each part read once)."""
        for key in list_keys(self.s3, self.bucket, self.layout.parts(run_id, REPORT_JOBS)):
            if key not in self._rows:
                self._rows[key] = get_table(self.s3, self.bucket, key, REPORT_JOBS, ["job_id"]).num_rows
        return sum(self._rows.values())

    def tick(self, run: Mapping[str, Any]) -> None:
        if not run:
            return
        line = f"targets done {self.targets_done(str(run['run_id']))} / {run.get('targets', '?')}"
        if line != self._last:
            self._last = line
            self.say(line)


def caught_error(error: Mapping[str, Any]) -> str:
    """A caught error (a Catch's `{"Error", "Cause"}`), with a Lambda error's own message from its cause."""
    cause = str(error.get("Cause", ""))
    try:
        parsed = json.loads(cause)
    except ValueError:
        parsed = None
    message = parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause
    return f"{error.get('Error')}: {message}"


def follow(sfn: Any, arn: str, progress: Progress, interval: float = 0.5) -> Execution:
    """Poll the execution until it ends, reporting each state entered, the run Discover made (or the
    error a stage failed with) and, every `interval` seconds, the batches' progress. The wall time is
    the execution's own, from its start and stop dates."""
    seen = 0
    ticked = 0.0
    run: dict[str, Any] = {}
    entered: list[str] = []
    failed = False
    while True:
        description = sfn.describe_execution(executionArn=arn)
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        for event in events[seen:]:
            details = event.get("stateEnteredEventDetails")
            if details:
                entered.append(details["name"])
                progress.say(f"state {details['name']}")
            exited = event.get("stateExitedEventDetails")
            output = _json_object(exited.get("output")) if exited else {}
            if "error" in output and not failed:  # a Catch put the error there: the failure path follows
                failed = True
                progress.say(f"{exited['name']} failed: {caught_error(output['error'])}")
            elif exited and exited["name"] == "Discover" and "run" in output:
                run = output["run"]
                progress.say(f"run {run['run_id']}: {run['targets']} targets in {run['batches']} batch(es)")
            elif exited and exited["name"] == "Discover" and output.get("skipped"):
                progress.say(f"skipped: {output['run_in_progress']['execution_arn']} is in progress")
        seen = len(events)
        if time.monotonic() - ticked >= interval:
            progress.tick(run)
            ticked = time.monotonic()
        if description["status"] != "RUNNING":
            progress.tick(run)
            output = json.loads(description.get("output") or "{}")
            start, stop = description.get("startDate"), description.get("stopDate") or _timed_out_at(events)
            return Execution(
                arn=arn,
                status=description["status"],
                output=output,
                error=description.get("error"),
                cause=description.get("cause"),
                wall_seconds=(stop - start).total_seconds() if start and stop else time.monotonic() - progress.started,
                events=events,
                states_entered=entered,
                discovered=run,
            )
        time.sleep(0.5)


def _timed_out_at(events: list[dict[str, Any]]) -> datetime | None:
    """When an execution timed out, from its history (moto's DescribeExecution leaves out the stopDate
    of a TIMED_OUT execution)."""
    timed_out = [event["timestamp"] for event in events if event.get("type") == "ExecutionTimedOut"]
    return timed_out[0] if timed_out else None


def start_and_follow(
    deployment: Deployment,
    lambdas: InProcessLambdas,
    out: TextIO,
    *,
    name: str,
    execution_input: Mapping[str, Any],
    log: TextIO,
    interval: float = 0.5,
    clock: Callable[[], datetime] | None = None,
) -> Execution:
    """Start an execution of the deployed state machine and follow it; handlers' logs go to `log`.
    `clock`: the run's virtual clock, printed beside real time."""
    sfn, s3 = client("stepfunctions"), client("s3")
    layout = Layout(deployment.data_prefix)
    progress = Progress(out, s3, deployment.bucket, layout, clock)
    histories = MapRunHistories()
    with lambdas.installed(), histories.installed(), handler_output(lambdas, log):
        arn = sfn.start_execution(
            stateMachineArn=deployment.state_machine_arn, name=name, input=json.dumps(execution_input)
        )["executionArn"]
        progress.say(f"execution {name} started")
        execution = follow(sfn, arn, progress, interval)
    execution.child_events = histories.events()
    return execution


@contextmanager
def handler_output(lambdas: InProcessLambdas, log: TextIO) -> Iterator[None]:
    """The handlers' JSON logs (Powertools binds its stream at import) and EMF metrics (printed) go to `log`."""
    lambdas.load_handlers()
    streams = [h for h in logging.getLogger(SERVICE).handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.setStream(log) for h in streams]
    try:
        with redirect_stdout(log):
            yield
    finally:
        for stream_handler, stream in zip(streams, previous, strict=True):
            stream_handler.setStream(stream)


def transitions(execution: Execution) -> dict[str, int]:
    """State transitions from the execution histories: the parent's and its batches' child executions'."""
    parent, batches = count_transitions(execution.events), count_transitions(execution.child_events)
    return {"parent": parent, "batches": batches, "total": parent + batches}


@contextmanager
def names_unnamed_executions() -> Iterator[None]:
    """While inside, an execution started without a name gets a UUID, as in AWS. moto's interpreter backend
    leaves it None: its ARN ends in `:None` and `$$.Execution.Name`, the collector's run id, is null."""
    original = StepFunctionsParserBackend.start_execution

    def start_execution(backend: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any) -> Any:
        return original(backend, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    with mock.patch.object(StepFunctionsParserBackend, "start_execution", start_execution):
        yield


def _json_object(text: str | None) -> dict[str, Any]:
    """A state's output as a dict; moto records some states' output as a placeholder that is not JSON."""
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
