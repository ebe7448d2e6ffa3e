"""`make bench`: the deployed state machine on emulated organizations of 100, 1,000 and 10,000 accounts,
under IAM as observed live and under a generous IAM, measured against a naive collector.

Each run stands the CDK app's template up on a fresh emulator (moto in-process, as in `make demo`)
with the collector's default configuration (cdk.json and `lambdas/collector/settings.py`, the same for
every model), and runs it on a virtual clock (`harness.virtual_time`): IAM's report latencies, the
state machine's Waits and the functions' own waits take virtual time (each IAM report call 0.1 s), so
a day of observed latencies runs in minutes of real time, and the figures are IAM's real latencies
(nothing is scaled). An execution past the state machine's TimeoutSeconds times out, as in AWS.

IAM models (`--models`):
- `observed-account`, `observed-path`: IAM as observed live (one job in progress at a time, reports of
  5-12 s), the cap counted per account or per entity path (the capture cannot tell which). Every
  account is new on the first day, so these run consecutive daily runs (03:00 UTC, as scheduled; a run
  still going at the next start skips it) until steady state: the backlog is gone (every target has
  data no older than the collector's `account_refresh_days`) and two consecutive days collect
  numbers of targets within `STEADY_TOLERANCE` of each other (at most `--days` days). The first day,
  the day the backlog is gone and the steady state are reported.
- `generous`: the emulator's earlier capacity (50 jobs in progress, every report 3 s), one run, with
  the naive baseline beside it and, at `STRESS_ACCOUNTS`, a stressed run (`STRESS_FAILURE_RATE` of IAM
  calls throttled at random, IAM admitting `STRESS_JOB_CAP` jobs).
Both report APIs share one token bucket of `RATE` calls per second (AWS publishes no rate).

Units (a model at a size, the stressed run) run `--jobs` at a time, each in a process of its own.

Per run (keys of bench-results.json): targets planned / collected / carried; IAM calls per target by
operation, refused starts and throttles included; the floor `max(2 x targets / rate, sum of report
latencies / IAM's admitted concurrency)` and wall / floor (wall on the virtual clock); the oldest
target's age after the run; Lambda invocations and state transitions per target; Parquet files and
rows; the functions' computing time (real CPU) apart from their billed duration; the run's cost at
list prices by service (`harness.costs`). `sizes` and `stress` keep the generous runs' figures
under their earlier keys; `models` holds every model's runs, the observed ones day by day. For an
organization of 10,000 accounts (1,250 OUs), an observed model's steady day gives the IAM hours and
cost of a daily run (measured at that size; from a smaller one, its IAM time and cost per target times
the 2,918 targets of such a day: root, every OU, a sixth of the accounts), and its first day the days a
full sweep of the accounts takes (each day's IAM time, the run's budget within the execution's timeout,
holds root and every OU and as many accounts as fit).
"""

from __future__ import annotations

from harness.bench.constants import (
    FETCH_TARGETS,
    LOGS,
    MAX_DAYS,
    MODELS,
    PROGRESS_SECONDS,
    RATE,
    RESULTS,
    ROOT,
    SEED,
    SIZES,
    START,
    STEADY_TOLERANCE,
    STRESS_ACCOUNTS,
    STRESS_FAILURE_RATE,
    STRESS_JOB_CAP,
    SWEEP_ACCOUNTS,
)
from harness.bench.figures import UNFINISHED, Before, figures_of
from harness.bench.goals import GOALS, judge
from harness.bench.report import GENEROUS_ROWS, RUN_ROWS, print_days, print_table
from harness.bench.runs import (
    organization_shape,
    run_baseline_size,
    run_days,
    run_once,
    run_ours,
    steady_index,
    summarize,
)
from harness.bench.stand import Requests, Stand, iam_model, stood_up
from harness.bench.units import Prefixed, Unit, run_bench, run_unit

__all__ = [
    "FETCH_TARGETS",
    "GENEROUS_ROWS",
    "GOALS",
    "LOGS",
    "MAX_DAYS",
    "MODELS",
    "PROGRESS_SECONDS",
    "RATE",
    "RESULTS",
    "ROOT",
    "RUN_ROWS",
    "SEED",
    "SIZES",
    "START",
    "STEADY_TOLERANCE",
    "STRESS_ACCOUNTS",
    "STRESS_FAILURE_RATE",
    "STRESS_JOB_CAP",
    "SWEEP_ACCOUNTS",
    "UNFINISHED",
    "Before",
    "Prefixed",
    "Requests",
    "Stand",
    "Unit",
    "figures_of",
    "iam_model",
    "judge",
    "organization_shape",
    "print_days",
    "print_table",
    "run_baseline_size",
    "run_bench",
    "run_days",
    "run_once",
    "run_ours",
    "run_unit",
    "steady_index",
    "stood_up",
    "summarize",
]
