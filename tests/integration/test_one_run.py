"""discover's handler while other executions of its state machine are in moto's record (moto, not running
them, keeps a started execution RUNNING until it is stopped): a run that starts while another is in progress
ends at once, with nothing assumed, called or written; a run that ended holds nothing off; of two runs in
progress, exactly one goes on."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import datetime
from typing import Any

import pytest

from harness.clients import client
from iam_report_emulator.access_reports import AccessReportStore
from lambdas.collector.config import ReporterSettings
from lambdas.collector.names import SERVICE
from lambdas.collector.services import services
from lambdas.handlers import discover
from tests.collector_run import BUCKET, discover_event, invoke, state_machine


def start(run_id: str) -> tuple[str, datetime]:
    """An execution of the state machine, RUNNING: its ARN and its start date as Step Functions records it."""
    sfn = client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=state_machine(), name=run_id, input="{}")["executionArn"]
    return arn, sfn.describe_execution(executionArn=arn)["startDate"]


@contextmanager
def handler_output() -> Iterator[io.StringIO]:
    """What the handler prints: its JSON log lines (Powertools binds its stream at import) and EMF metrics."""
    captured = io.StringIO()
    streams = [h for h in logging.getLogger(SERVICE).handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.setStream(captured) for h in streams]
    try:
        with redirect_stdout(captured):
            yield captured
    finally:
        for handler, stream in zip(streams, previous, strict=True):
            handler.setStream(stream)


def printed(output: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.getvalue().splitlines() if line.startswith("{")]


def test_a_run_started_while_another_is_in_progress_ends_at_once_without_iam_or_s3(
    s3: Any, store: AccessReportStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run in progress, and a second run started after it
    first, first_started = start("first")
    _, second_started = start("second")

    def no_reporter(settings: ReporterSettings) -> None:
        raise AssertionError("a skipped run assumed the reporter role")

    monkeypatch.setattr(services(), "reporter", no_reporter)
    # When the second run's discover runs
    with handler_output() as output:
        result = invoke(discover.handler, discover_event("second", second_started))
    # Then it is skipped, naming the run in progress
    assert set(result) == {"skipped", "run_in_progress"}
    assert result["skipped"] is True
    assert result["run_in_progress"]["execution_arn"] == first
    assert datetime.fromisoformat(result["run_in_progress"]["started_at"]) == first_started
    # with no IAM or Organizations call (the reporter role was never assumed) and nothing written
    assert sum(store.throttler.counters.calls.values()) == 0
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    # and visible: a warning naming the run in progress, and the RunsSkipped metric
    lines = printed(output)
    (warning,) = [line for line in lines if line.get("message") == "run skipped: another run is in progress"]
    assert (warning["level"], warning["correlation_id"]) == ("WARNING", "second")
    assert warning["run_in_progress"] == result["run_in_progress"]
    (emf,) = [line for line in lines if "_aws" in line]
    assert emf["RunsSkipped"] == [1.0]
    assert "TargetsDiscovered" not in emf


def test_a_run_that_ended_holds_no_later_run_off(s3: Any) -> None:
    # Given a run that was stopped (ABORTED), then a new run
    first, _ = start("first")
    client("stepfunctions").stop_execution(executionArn=first)
    _, started = start("second")
    # When the new run's discover runs, it goes on: a run context and its manifest
    result = invoke(discover.handler, discover_event("second", started))
    assert (result["skipped"], set(result)) == (False, {"skipped", "run"})
    assert s3.head_object(Bucket=BUCKET, Key=result["run"]["manifest_key"])


def test_of_two_runs_in_progress_exactly_one_goes_on_whichever_asks_first(s3: Any) -> None:
    # Given two runs in progress, started one after the other
    runs = {run_id: start(run_id) for run_id in ("run-a", "run-b")}
    # When the later one's discover asks first, then the earlier one's
    results = {run_id: invoke(discover.handler, discover_event(run_id, runs[run_id][1])) for run_id in reversed(runs)}
    # Then the earlier goes on and the later is skipped, naming it
    assert (results["run-a"]["skipped"], results["run-b"]["skipped"]) == (False, True)
    assert results["run-b"]["run_in_progress"]["execution_arn"] == runs["run-a"][0]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert results["run-a"]["run"]["manifest_key"] in keys
    assert not [key for key in keys if "run-b" in key]
