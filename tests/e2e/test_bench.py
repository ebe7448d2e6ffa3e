"""`make bench` in small: the same code on a small organization, so the benchmark keeps working."""

from __future__ import annotations

import io
from typing import Any

from harness.bench import DEPLOYED, judge, print_table, run_bench
from harness.runner import synthesize


def test_the_bench_measures_ours_and_the_baseline_and_judges_the_goals() -> None:
    out = io.StringIO()
    template: dict[str, Any] = synthesize(DEPLOYED | {"iam_calls_per_second": 40.0})  # as `make bench` deploys it
    results = run_bench(template, [12], out, rate=40.0, fetch_targets=4, stress=12)
    ours = results["sizes"]["12"]
    base = ours["baseline"]
    # Both collected every target of the same organization, with no row lost
    assert ours["targets"] == base["targets"] > 12
    assert ours["rows"] == base["rows"] > 0
    assert (ours["rows_lost"], ours["targets_not_completed"]) == (0, 0)
    # Ours sits on the floor of two IAM calls per target; the naive one pages and polls
    by_operation = ours["iam_calls_per_target_by_operation"]
    assert by_operation["GetOrganizationsAccessReport"] == 1.0
    assert 2.0 <= ours["iam_calls_per_target"] <= 2.1 < base["iam_calls_per_target"]
    # One snapshot file against one file per target
    assert (ours["parquet_files"], base["parquet_files"]) == (1, base["targets"])
    # Transitions are counted from the histories: the parent's six states (Discover, OneRunAtATime,
    # CollectBatches, Finalize, Alert, Done) and the batches' own
    assert ours["state_transitions"]["parent"] == 6
    assert ours["state_transitions"]["batches"] >= 3 * ours["batches"]
    assert ours["write_rows_per_second"] > 0
    assert 0 < ours["cost_usd"] == ours["cost_by_service_usd"]["total"]
    # Under injected throttling and a lower job cap, both answers happen and nothing is lost
    stressed = results["stress"]
    assert stressed["throttling_errors"] > 0
    assert (stressed["rows_lost"], stressed["targets_not_completed"]) == (0, 0)
    assert stressed["rows"] == ours["rows"]
    memory = results["fetch_memory"]
    assert memory["10x"]["rows"] > 5 * memory["1x"]["rows"] > 0
    # The goals are judged from the figures, and the table prints them
    goals = judge(results)
    assert goals["iam_calls_per_target <= 2.1"]["met"]
    assert goals["every throttle absorbed, nothing lost"]["met"]
    printed = io.StringIO()
    print_table(results, printed)
    assert "IAM calls / target" in printed.getvalue()
    assert "Goals:" in printed.getvalue()
