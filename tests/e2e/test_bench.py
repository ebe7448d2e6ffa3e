"""`make bench` in small: the same code on a small organization, so the benchmark keeps working.

IAM's observed model runs day after day on the virtual clock: days of report latencies pass in seconds.
"""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from typing import Any

import pytest

from harness.bench import RATE, START, judge, print_table, run_bench, run_days
from harness.runner import synthesize
from lambdas.collector.settings import RUN_BUDGET_MAX_SECONDS, RUN_FINISH_SECONDS

ACCOUNTS = 12


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    synthesized: dict[str, Any] = synthesize()  # the collector's defaults, as `make bench` deploys it
    return synthesized


@pytest.fixture(scope="module")
def results(template: dict[str, Any]) -> dict[str, Any]:
    out = io.StringIO()
    return run_bench(
        template, [ACCOUNTS], out, models=["observed-account", "generous"], max_days=4, fetch_targets=None, stress=12
    )


def test_observed_iam_runs_consecutive_days_on_virtual_time_until_steady_state(results: dict[str, Any]) -> None:
    summary = results["models"]["observed-account"][str(ACCOUNTS)]
    days = summary["days"]
    # Daily runs from the schedule's first start, one calendar day apart
    assert [d["dt"] for d in days] == [(START.date() + timedelta(days=n)).isoformat() for n in range(len(days))]
    first = days[0]
    targets = first["targets_in_partition"]
    assert targets > ACCOUNTS
    # Virtual time: one job at a time at IAM's observed latencies (4.7 s at least each) passes in
    # minutes of the clock, seconds of real time; no jump was ever made early
    assert first["wall_seconds"] >= 4.7 * targets
    assert first["real_seconds"] < first["wall_seconds"] / 5
    assert first["wall_to_floor"] >= 1
    assert {(d["clock"]["interrupted_quiet"], d["lambda_over_timeout"]) for d in days} == {(0, 0)}
    # Every day's partition holds every target exactly once, nothing lost, root and OUs collected daily
    for day in days:
        assert day["status"] == "SUCCEEDED"
        assert (day["targets_in_partition"], day["duplicate_targets"], day["missing_targets"]) == (targets, 0, 0)
        assert (day["rows_lost"], day["targets_not_completed"]) == (0, 0)
        assert day["targets_collected"] + day["targets_carried"] + day["targets_without_data"] == targets
        assert day["root_and_ous_collected"]
        assert day["iam_calls_per_target"] >= 2.0  # refused starts and polls counted in
        assert day["floor_seconds"] == max(day["floor_rate_seconds"], day["floor_latency_seconds"]) > 0
    # Day 1 collects everything (every account new); the next days root, OUs and a share of the accounts
    assert (first["targets_collected"], first["backlog"], summary["backlog_gone_day"]) == (targets, 0, 1)
    assert all(0 < d["targets_collected"] < targets and d["targets_carried"] > 0 for d in days[1:])
    assert days[1]["oldest_age_days"] == 1
    # Steady state: two consecutive days alike once the backlog is gone
    steady = summary["steady_state"]
    assert steady is not None
    assert steady == days[-1]
    assert summary["steady_state_day"] == steady["day"] > 1
    assert summary["iam_hours_daily_10000"] > 0
    assert summary["sweep_days_10000"] >= 1
    assert summary["steady_cost_usd_10000"] == pytest.approx(
        sum(v for k, v in summary["steady_cost_by_service_usd_10000"].items() if k != "total"), abs=1e-3
    )
    assert date.fromisoformat(steady["dt"]) > START.date()


def test_the_generous_run_measures_ours_and_the_baseline(results: dict[str, Any]) -> None:
    ours = results["sizes"][str(ACCOUNTS)]
    assert ours is results["models"]["generous"][str(ACCOUNTS)]
    base = ours["baseline"]
    # Both collected every target of the same organization, with no row lost
    assert ours["targets"] == base["targets"] > ACCOUNTS
    assert ours["rows"] == base["rows"] > 0
    assert (ours["rows_lost"], ours["targets_not_completed"]) == (0, 0)
    # Ours sits near the floor of two IAM calls per target; the naive one pages and polls
    by_operation = ours["iam_calls_per_target_by_operation"]
    assert by_operation["GenerateOrganizationsAccessReport"] == 1.0
    assert 2.0 <= ours["iam_calls_per_target"] <= 2.2 < base["iam_calls_per_target"]
    # One snapshot file against one file per target
    assert (ours["parquet_files"], base["parquet_files"]) == (1, base["targets"])
    # Transitions are counted from the histories: the parent's eight states (Discover, OneRunAtATime,
    # CollectBatches, Finalize, Recommend, Report, Alert, Done) and the batches' own
    assert ours["state_transitions"]["parent"] == 8
    assert ours["state_transitions"]["batches"] >= 3 * ours["batches"]
    assert ours["write_rows_per_second"] > 0
    assert 0 < ours["cost_usd"] == ours["cost_by_service_usd"]["total"]
    assert ours["compute_seconds"] > 0
    assert ours["lambda_seconds"]


def test_the_stressed_run_absorbs_throttles_and_the_goals_are_judged(results: dict[str, Any]) -> None:
    # Under injected throttling and a lower job cap, both answers happen and nothing is lost
    stressed = results["stress"]
    assert stressed["throttling_errors"] > 0
    assert (stressed["rows_lost"], stressed["targets_not_completed"]) == (0, 0)
    assert stressed["rows"] == results["sizes"][str(ACCOUNTS)]["rows"]
    # The goals are judged from the figures, and the table prints them
    goals = judge(results)
    assert goals["nothing lost: every target once in every day's partition, refusals and throttles absorbed"]["met"]
    assert goals["the stressed run keeps its guarantees"]["met"]
    assert "a 10,000-account daily run <= 12 h of IAM time, root and every OU daily, no account older than 7 d" in goals
    printed = io.StringIO()
    print_table(results, printed)
    for heading in (
        "observed-account, 12 accounts",
        "first day (d1)",
        "steady state (d",
        "IAM calls / target",
        "Goals:",
    ):
        assert heading in printed.getvalue()


def test_an_execution_past_the_state_machines_timeout_times_out_on_the_virtual_clock(template: dict[str, Any]) -> None:
    # Given the deployed state machine with a timeout shorter than a day of one job at a time
    deployed = f'\\"TimeoutSeconds\\":{RUN_BUDGET_MAX_SECONDS + RUN_FINISH_SECONDS}'
    assert deployed in json.dumps(template)
    short = json.loads(json.dumps(template).replace(deployed, '\\"TimeoutSeconds\\":120'))
    # When the first day runs
    summary = run_days(short, "observed-account", ACCOUNTS, RATE, io.StringIO(), max_days=1)
    # Then it times out after 120 s of virtual time, as AWS would end it, and makes no partition
    (day,) = summary["days"]
    assert (day["status"], day["wall_seconds"]) == ("TIMED_OUT", 120.0)
    assert (day["targets_in_partition"], day["targets_collected"]) == (0, 0)
    assert day["missing_targets"] == day["backlog"] > ACCOUNTS
    assert summary["backlog_gone"] is None
    assert summary["steady_state"] is None
