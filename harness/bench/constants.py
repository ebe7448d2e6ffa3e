"""The benchmark's parameters: where it writes, the organizations and IAM models it runs, IAM's rate,
the schedule's first start, how long it runs days for, and the stressed run's settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository (harness/bench/constants.py)
RESULTS = ROOT / "bench-results.json"
LOGS = ROOT / "bench-output"  # each run's function logs (JSON lines, as CloudWatch would hold them)
SIZES = (100, 1_000, 10_000)
MODELS = ("observed-account", "observed-path", "generous")
RATE = 20.0  # IAM report calls per second, both operations together
START = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # the first run: cdk.json's schedule, 03:00 UTC
MAX_DAYS = 12
STEADY_TOLERANCE = 0.05
SWEEP_ACCOUNTS = 10_000  # the organization the "daily run" and "full sweep" figures are for
# The stressed run: IAM throttles this fraction of calls at random, and admits fewer jobs than the
# generous model, so both answers happen and must be absorbed.
STRESS_ACCOUNTS = 1_000
STRESS_FAILURE_RATE = 0.1
STRESS_JOB_CAP = 20
SEED = 7
PROGRESS_SECONDS = 60.0  # real seconds between "targets done" lines (each reads the run's new parts)
FETCH_TARGETS = 25  # and ten times as many: 250, the largest batch
# Organizations whose report page is measured (bytes, build and render seconds, browser load seconds).
PAGE_SIZES = (1_000, 10_000)
