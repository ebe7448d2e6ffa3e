"""The cost model: counts times list prices, by service."""

from __future__ import annotations

import pytest

from harness.costs import RunUsage, cost, gb_seconds
from harness.histories import transitions


def test_a_run_costs_its_counts_at_list_prices() -> None:
    usage = RunUsage(
        state_transitions=1_000,
        lambda_requests=1_000_000,
        lambda_gb_seconds=75_000.0,
        s3_put_list=1_000,
        s3_get=10_000,
        stored_bytes=30 * 1024**3,
        log_bytes=2 * 1024**3,
        sns_publishes=1_000_000,
        traces=1_000_000,
        dynamodb_writes=1_000_000,
        dynamodb_reads=2_000_000,
    )
    dollars = cost(usage)
    assert dollars["step_functions"] == pytest.approx(0.025)
    assert dollars["lambda"] == pytest.approx(75_000 * 0.0000133334 + 0.20)
    assert dollars["s3"] == pytest.approx(0.005 + 0.004 + 0.023)  # a day of 30 GB at $0.023 per GB-month
    assert dollars["cloudwatch_logs"] == pytest.approx(1.0)
    assert dollars["sns"] == pytest.approx(0.5)
    assert dollars["xray"] == pytest.approx(5.0)
    assert dollars["dynamodb"] == pytest.approx(0.625 + 0.25)
    assert dollars["total"] == pytest.approx(sum(v for k, v in dollars.items() if k != "total"), abs=1e-5)


def test_gb_seconds_weigh_each_functions_time_by_its_memory() -> None:
    assert gb_seconds({"poll": 10.0, "finalize": 2.0}, {"poll": 512, "finalize": 3072}) == pytest.approx(11.0)


def test_transitions_count_states_entered_and_task_retries() -> None:
    events = [
        {"type": "ExecutionStarted"},
        {"type": "TaskStateEntered"},
        {"type": "LambdaFunctionScheduled"},
        {"type": "LambdaFunctionFailed"},
        {"type": "LambdaFunctionScheduled"},  # a retry: a transition without a new state entered
        {"type": "LambdaFunctionSucceeded"},
        {"type": "TaskStateExited"},
        {"type": "ChoiceStateEntered"},
        {"type": "SucceedStateEntered"},
    ]
    assert transitions(events) == 4
