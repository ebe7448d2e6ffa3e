"""Runs: one execution of the state machine, consecutive daily runs until steady state and their
summary, one run on the generous model, and the naive baseline's run beside it."""

from __future__ import annotations

import functools
import io
import math
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TextIO

from moto import mock_aws

import iam_report_emulator
from harness.baseline import run_baseline
from harness.bench.constants import (
    LOGS,
    MAX_DAYS,
    PROGRESS_SECONDS,
    SEED,
    START,
    STEADY_TOLERANCE,
    SWEEP_ACCOUNTS,
)
from harness.bench.figures import Before, _per, figures_of
from harness.bench.stand import Stand, _configure, stood_up
from harness.clients import client, reporter_role_arn
from harness.costs import RunUsage, cost
from harness.executions import start_and_follow
from harness.virtual_time import timed
from iam_report_emulator.iam_extension import store_for_account
from iam_report_emulator.presets import build_spec


def run_once(stand: Stand, day: int, out: TextIO, log: io.StringIO) -> dict[str, Any]:
    """One execution of the state machine (the run of calendar day `day`) and its figures."""
    before = Before.of(stand)
    dt = stand.clock.now().date().isoformat()
    with timed(stand.lambdas, stand.clock) as times:
        execution = start_and_follow(
            stand.deployment,
            stand.lambdas,
            out,
            name=f"bench-{stand.name}-{len(stand.spec.accounts)}-day-{day}",
            execution_input={},
            log=log,
            interval=PROGRESS_SECONDS,
            clock=stand.clock.now,
        )
    real = time.monotonic() - before.real
    figures = figures_of(stand, execution, before=before, times=times, log=log.getvalue(), dt=dt, real=real)
    return {"day": day, "dt": dt, **figures}


def _start_of(day: int) -> datetime:
    return START + timedelta(days=day - 1)


def _next_day(stand: Stand, day: int) -> int:
    """The next scheduled start after the run that just ended (a start while a run goes on is skipped)."""
    following = day + 1
    while _start_of(following) < stand.clock.now():
        following += 1
    stand.clock.advance_to(_start_of(following))
    return following


def steady_index(days: Sequence[dict[str, Any]], tolerance: float = STEADY_TOLERANCE) -> int | None:
    """The first day, after the backlog is gone, that collects within `tolerance` of the day before."""
    for i in range(1, len(days)):
        before, day = days[i - 1], days[i]
        if not all(d["status"] == "SUCCEEDED" and d["backlog"] == 0 for d in (before, day)):
            continue
        a, b = before["targets_collected"], day["targets_collected"]
        if abs(a - b) <= tolerance * max(a, b):
            return i
    return None


def run_days(
    template: dict[str, Any], name: str, accounts: int, rate: float, out: TextIO, *, max_days: int = MAX_DAYS
) -> dict[str, Any]:
    """Daily runs on IAM model `name` from the first (every account new) until steady state."""
    days: list[dict[str, Any]] = []
    with stood_up(template, name, accounts, rate) as stand:
        day, path = 1, LOGS / f"lambda-logs-{name}-{accounts}.jsonl"
        path.write_text("")
        while len(days) < max_days:
            out.write(f"\n## {name}, {accounts:,} accounts: day {day}, {_start_of(day):%Y-%m-%d %H:%M} UTC\n")
            out.flush()
            log = io.StringIO()
            figures = run_once(stand, day, out, log)
            with path.open("a") as logs:
                logs.write(log.getvalue())
            if days:
                figures["skipped_starts"] = day - days[-1]["day"] - 1
            days.append(figures)
            out.write(_day_line(figures))
            failing = [d["status"] != "SUCCEEDED" for d in days[-2:]]
            if steady_index(days) is not None or (len(failing) == 2 and all(failing)):
                break
            day = _next_day(stand, day)
        budget = min(stand.settings.run_budget_seconds, stand.timeout)
        refresh = stand.refresh_days
    return summarize(days, accounts, refresh, budget)


def _day_line(day: dict[str, Any]) -> str:
    oldest = day["oldest_age_days"]
    return (
        f"  day {day['day']} {day['status']}: {day['targets_planned']:,} planned, {day['targets_collected']:,} "
        f"collected, {day['targets_carried']:,} carried, backlog {day['backlog']:,}, oldest "
        f"{'-' if oldest is None else oldest} d; {day['iam_hours']} h of IAM time in {day['real_seconds']} s "
        f"real; {day['iam_calls_per_target']} IAM calls/target; wall/floor {day['wall_to_floor']}\n"
    )


@functools.cache
def organization_shape(accounts: int, refresh_days: int) -> tuple[int, int, int]:
    """The benchmark's organization of `accounts` accounts: (root and OUs, member accounts, targets of
    a steady day: root, every OU and the accounts' even share over the cadence, as the plan spreads them)."""
    spec = build_spec("demo", SEED, START, accounts=accounts)
    always = 1 + len(spec.ous)
    members = len([a for a in spec.accounts if a.id != spec.management_account_id])
    return always, members, always + math.ceil(members / max(1, refresh_days - 1))


def summarize(days: list[dict[str, Any]], accounts: int, refresh_days: int, budget_seconds: int) -> dict[str, Any]:
    """The first day, the day the backlog is gone, the steady state; and what they mean for an
    organization of `SWEEP_ACCOUNTS` accounts: measured at that size, else the per-target figures of
    this one applied to the targets of that organization (its root, OUs and accounts' share a day)."""
    gone = next((d for d in days if d["status"] == "SUCCEEDED" and d["backlog"] == 0), None)
    steady_at = steady_index(days)
    steady = days[steady_at] if steady_at is not None else None
    reference, first = steady or days[-1], days[0]
    always, members, daily = organization_shape(SWEEP_ACCOUNTS, refresh_days)
    measured = accounts == SWEEP_ACCOUNTS
    scale = 1.0 if measured else daily / max(1, reference["targets_planned"])
    # A full sweep: each day's IAM time (the run's budget, within the execution's timeout) holds root and
    # every OU, then as many accounts as fit at the first day's IAM seconds per target.
    per_target = first["wall_seconds"] / max(1, first["targets_planned"])
    room = budget_seconds / per_target - always if per_target else members
    sweep = (gone["day"] if gone else None) if measured else (math.ceil(members / room) if room > 0 else None)
    return {
        "days": days,
        "first_day": first,
        "backlog_gone": gone,
        "backlog_gone_day": gone["day"] if gone else None,
        "steady_state": steady,
        "steady_state_day": steady["day"] if steady else None,
        "measured_at_accounts": accounts,
        "targets_daily_10000": daily if not measured else reference["targets_planned"],
        "iam_hours_daily_10000": round(reference["iam_hours"] * scale, 2),
        "sweep_days": gone["day"] if gone else None,
        "sweep_days_10000": sweep,
        "steady_cost_usd_10000": round(reference["cost_usd"] * scale, 4),
        "steady_cost_by_service_usd_10000": {
            service: round(dollars * scale, 4) for service, dollars in reference["cost_by_service_usd"].items()
        },
    }


def run_ours(
    template: dict[str, Any],
    accounts: int,
    rate: float,
    out: TextIO,
    *,
    failure_rate: float = 0.0,
    job_cap: int | None = None,
) -> dict[str, Any]:
    """One run on the generous model (the stressed run: with throttles injected and a lower job cap)."""
    with stood_up(template, "generous", accounts, rate, failure_rate=failure_rate, job_cap=job_cap) as stand:
        log = io.StringIO()
        figures = run_once(stand, 1, out, log)
        suffix = "-stressed" if failure_rate else ""
        (LOGS / f"lambda-logs-{accounts}{suffix}.jsonl").write_text(log.getvalue())
    out.write(_day_line(figures))  # a run that did not succeed fails the goals with its status
    return figures


def run_baseline_size(accounts: int, rate: float, seed: int) -> dict[str, Any]:
    iam_report_emulator.install()
    with mock_aws():
        spec = _configure(accounts, rate, seed)
        store = store_for_account(spec.management_account_id)
        bucket = "baseline-data"
        client("s3").create_bucket(Bucket=bucket)
        result = run_baseline(reporter_role_arn(spec.management_account_id), bucket, sleep=store.clock.advance)
        throttled = sum(store.throttler.counters.throttled.values())
    calls = sum(result.iam_calls.values())
    memory_gb = 1.0  # a script of this kind on Lambda at 1 GB (past 15 minutes it could not run there at all)
    usage = RunUsage(
        state_transitions=0,
        lambda_requests=1,
        lambda_gb_seconds=result.wall_seconds * memory_gb,
        s3_put_list=result.files,
        s3_get=0,
        stored_bytes=0,
        log_bytes=0,
        sns_publishes=0,
        traces=0,
    )
    return {
        "targets": result.targets,
        "iam_calls": calls,
        "iam_calls_per_target": _per(calls, result.targets),
        "iam_calls_by_operation": result.iam_calls,
        "iam_calls_per_target_by_operation": {op: _per(n, result.targets) for op, n in result.iam_calls.items()},
        "throttling_errors": throttled,
        "parquet_files": result.files,
        "rows": result.rows,
        "parquet_files_per_million_rows": round(result.files / max(1.0, result.rows / 1e6), 3),
        "write_rows_per_second": round(result.rows / result.write_seconds) if result.write_seconds else None,
        "wall_seconds": round(result.wall_seconds, 1),
        "wall_seconds_slept": result.slept_seconds,
        "cost_usd": cost(usage)["total"],
    }


def _ratios(ours: dict[str, Any], base: dict[str, Any]) -> dict[str, float]:
    def ratio(a: Any, b: Any) -> float:
        return round(a / b, 2) if a and b else 0.0

    return {
        "iam_calls_per_target": ratio(base["iam_calls_per_target"], ours["iam_calls_per_target"]),
        "parquet_files": ratio(base["parquet_files"], ours["parquet_files"]),
        "write_rows_per_second": ratio(ours["write_rows_per_second"], base["write_rows_per_second"]),
        "wall_seconds": ratio(base["wall_seconds"], ours["wall_seconds"]),
        "cost_usd": ratio(base["cost_usd"], ours["cost_usd"]),
    }
