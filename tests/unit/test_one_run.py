"""One run at a time, decided from Step Functions' list of running executions (answers stubbed with botocore's
Stubber, which checks every request against the service model): the earliest run goes on, a tie goes to the
lower execution ARN, and every page of the list is read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lambdas.collector.collect.one_run import run_in_progress
from lambdas.collector.models import DiscoverEvent

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:collector"
T0 = datetime(2026, 12, 1, 3, 0, 0, 123_000, tzinfo=UTC)


def execution_arn(run_id: str) -> str:
    return f"{MACHINE.replace(':stateMachine:', ':execution:')}:{run_id}"


def event(run_id: str, started_at: datetime) -> DiscoverEvent:
    """discover's event: `$$.Execution.StartTime` may carry more precision than ListExecutions' startDate."""
    return DiscoverEvent(
        run_id=run_id, started_at=started_at, state_machine_arn=MACHINE, execution_arn=execution_arn(run_id)
    )


def listed(run_id: str, started_at: datetime) -> dict[str, Any]:
    """A RUNNING execution as ListExecutions lists it (its start to the millisecond)."""
    return {
        "executionArn": execution_arn(run_id),
        "stateMachineArn": MACHINE,
        "name": run_id,
        "status": "RUNNING",
        "startDate": started_at.replace(microsecond=started_at.microsecond // 1000 * 1000),
    }


@pytest.fixture
def stepfunctions() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("stepfunctions", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def answer(stubber: Stubber, *pages: list[dict[str, Any]]) -> None:
    """ListExecutions(RUNNING) answering `pages`, each after the previous page's nextToken."""
    for number, executions in enumerate(pages):
        request: dict[str, Any] = {"stateMachineArn": MACHINE, "statusFilter": "RUNNING"}
        if number:
            request["nextToken"] = f"page-{number}"
        response: dict[str, Any] = {"executions": executions}
        if number < len(pages) - 1:
            response["nextToken"] = f"page-{number + 1}"
        stubber.add_response("list_executions", response, request)


def test_a_run_with_no_other_run_in_progress_goes_on(stepfunctions: tuple[Any, Stubber]) -> None:
    client, stubber = stepfunctions
    # Given only this run is RUNNING (listed with its start cut to the millisecond)
    answer(stubber, [listed("run-b", T0 + timedelta(microseconds=456))])
    # Then it goes on
    assert run_in_progress(client, event("run-b", T0 + timedelta(microseconds=456))) is None


def test_a_run_started_while_earlier_runs_are_in_progress_is_skipped_naming_the_earliest_on_any_page(
    stepfunctions: tuple[Any, Stubber],
) -> None:
    client, stubber = stepfunctions
    # Given a later run on the first page, this run, and two earlier runs on the second page
    this, since = event("today", T0), T0 - timedelta(hours=25)
    answer(
        stubber,
        [listed("later", T0 + timedelta(seconds=1)), listed("today", T0)],
        [listed("yesterday", T0 - timedelta(hours=1)), listed("the-day-before", since)],
    )
    # Then this run is skipped, naming the earliest run in progress
    in_progress = run_in_progress(client, this)
    assert in_progress is not None
    assert in_progress.model_dump() == {"execution_arn": execution_arn("the-day-before"), "started_at": since}


def test_a_run_in_progress_that_started_later_does_not_hold_an_earlier_one_off(
    stepfunctions: tuple[Any, Stubber],
) -> None:
    client, stubber = stepfunctions
    answer(stubber, [listed("later", T0 + timedelta(milliseconds=1)), listed("earlier", T0)])
    assert run_in_progress(client, event("earlier", T0)) is None


@pytest.mark.parametrize("listing_order", ["a-first", "b-first"])
def test_of_two_runs_started_in_the_same_millisecond_exactly_one_goes_on_the_lower_execution_arn(
    stepfunctions: tuple[Any, Stubber], listing_order: str
) -> None:
    client, stubber = stepfunctions
    # Given runs "run-a" and "run-b" started in the same millisecond, "run-b" some microseconds first
    # (the precision `$$.Execution.StartTime` may have and ListExecutions has not)
    started = {"run-a": T0 + timedelta(microseconds=900), "run-b": T0 + timedelta(microseconds=100)}
    runs = [listed(run_id, at) for run_id, at in started.items()]
    if listing_order == "b-first":
        runs.reverse()
    # When each asks, both listed RUNNING
    outcomes = {}
    for run_id, at in started.items():
        answer(stubber, runs)
        outcomes[run_id] = run_in_progress(client, event(run_id, at))
    # Then exactly one goes on: the lower ARN, not the microseconds; the other names it
    assert outcomes["run-a"] is None
    in_progress = outcomes["run-b"]
    assert in_progress is not None
    assert in_progress.execution_arn == execution_arn("run-a")
