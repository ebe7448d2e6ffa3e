"""`make bench`: the deployed state machine on emulated organizations of 100, 1,000 and 10,000 accounts,
measured against a naive collector on the same organization.

For each size, in a fresh emulator (moto in-process, the CDK app's template stood up as in `make demo`):
IAM runs the emulator's `generous` model (report jobs take `JOB_SECONDS`, IAM admits at most 50 jobs in
progress) and both report APIs share one token bucket of `RATE` calls per second (burst `RATE`): AWS
publishes neither figure, so these are the model, and the collector is deployed configured for it
(`iam_max_jobs_in_progress` 50, a first wait of `JOB_SECONDS`). The floor of a run is then 2 calls per
target at `RATE`. (IAM as observed live admits one job at a time: the benchmark on that model is the
next step, issue 14.)

Figures per size (keys of bench-results.json, as printed): IAM calls per target by operation,
Throttling and ReportGenerationLimitExceeded answers (and that no row was lost to them), Lambda
invocations and state transitions per target (from the parent's and every batch's execution
history), Parquet files and rows of the snapshot, normalize-and-write rows per second (thread CPU
time, logged by the functions), peak RSS of the fetch step (a separate process), wall time against the
floor, and the run's cost from those counts and AWS list prices (`harness.costs`).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from moto import mock_aws

import iam_report_emulator
from harness.baseline import run_baseline
from harness.clients import client, reporter_role_arn
from harness.costs import RunUsage, cost, gb_seconds
from harness.executions import Execution, start_and_follow, transitions
from harness.fetch_probe import probe
from harness.runner import MOTO_CONFIG, Deployment, InProcessLambdas, stand_up, synthesize
from iam_report_emulator.iam_extension import REPORT_OPERATIONS, store_for_account
from iam_report_emulator.iam_model import GENEROUS
from iam_report_emulator.presets import apply_preset
from iam_report_emulator.throttling import RateLimit
from lambdas.collector.names import Layout
from lambdas.collector.services import services
from lambdas.collector.store.schema import ACCESS_DETAILS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results.json"
LOGS = ROOT / "bench-output"  # each size's function logs (JSON lines, as CloudWatch would hold them)
SIZES = (100, 1_000, 10_000)
RATE = 20.0  # IAM report calls per second, both operations together
JOB_SECONDS = 3.0
JOB_CAP = 50
# The collector's configuration for this model (cdk.json's `collector` context on top of the defaults).
DEPLOYED = {"iam_max_jobs_in_progress": JOB_CAP, "poll_initial_wait_seconds": int(JOB_SECONDS)}
# The stressed run: IAM throttles this fraction of calls at random, and admits fewer jobs than the
# collector's configured share assumes, so both answers happen and must be absorbed.
STRESS_ACCOUNTS = 1_000
STRESS_FAILURE_RATE = 0.1
STRESS_JOB_CAP = 20
SEED = 7
FETCH_TARGETS = 25  # and ten times as many: 250, the largest batch
GOALS = {
    "iam_calls_per_target": 2.1,
    "state_transitions_per_target": 0.3,
    "wall_to_floor": 1.25,
    "parquet_files_per_million_rows": 1.0,
    "write_rate_vs_baseline": 3.0,
    "cost_usd_10000": 0.05,
}


def _per(value: float, targets: int) -> float:
    return round(value / targets, 4) if targets else 0.0


class S3Requests:
    """Counts the functions' S3 requests by operation (their clients come from `services().session`)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, event_name: str, **_: Any) -> None:
        self.counts[event_name.rsplit(".", 1)[-1]] += 1

    @property
    def gets(self) -> int:
        return self.counts["GetObject"] + self.counts["HeadObject"]

    @property
    def puts_and_lists(self) -> int:
        return sum(n for op, n in self.counts.items() if op not in ("GetObject", "HeadObject", "DeleteObject"))


def _stage_logs(log: str) -> list[dict[str, Any]]:
    lines = []
    for line in log.splitlines():
        if line.startswith("{") and '"write_cpu_seconds"' in line:
            lines.append(json.loads(line))
    return lines


def _bytes_under(s3: S3Client, bucket: str, prefix: str) -> tuple[list[str], int]:
    keys, size = [], 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            keys.append(item["Key"])
            size += item["Size"]
    return keys, size


def _configure(accounts: int, rate: float, seed: int, *, failure_rate: float = 0.0, job_cap: int = JOB_CAP) -> Any:
    spec = apply_preset("demo", seed=seed, accounts=accounts)
    store = store_for_account(spec.management_account_id)
    store.configure(model=GENEROUS, max_jobs_in_progress=job_cap)
    limits: dict[str | tuple[str, ...], RateLimit] = {REPORT_OPERATIONS: RateLimit(rate=rate, burst=rate)}
    store.throttler.configure(limits=limits, failure_rate=failure_rate, seed=seed)
    return spec


def run_ours(
    template: dict[str, Any],
    accounts: int,
    rate: float,
    seed: int,
    out: TextIO,
    *,
    failure_rate: float = 0.0,
    job_cap: int = JOB_CAP,
) -> dict[str, Any]:
    iam_report_emulator.install()
    services.cache_clear()
    with mock_aws(config=MOTO_CONFIG):  # type: ignore[call-overload]  # moto types the config as a TypedDict
        spec = _configure(accounts, rate, seed, failure_rate=failure_rate, job_cap=job_cap)
        store = store_for_account(spec.management_account_id)
        requests = S3Requests()
        services().session.events.register("before-call.s3", requests)
        deployment = stand_up(template, reporter_role_arn(spec.management_account_id))
        lambdas = InProcessLambdas(deployment.functions)
        log = io.StringIO()
        execution = start_and_follow(
            deployment, lambdas, out, name=f"bench-{accounts}", execution_input={}, log=log, interval=15.0
        )
        wall = execution.wall_seconds
        suffix = "-stressed" if failure_rate else ""
        (LOGS / f"lambda-logs-{accounts}{suffix}.jsonl").write_text(log.getvalue())
        if execution.status != "SUCCEEDED":
            raise RuntimeError(f"the run of {accounts} accounts ended {execution.status}: {execution.cause}")
        figures = _our_figures(
            deployment, lambdas, execution, store=store, requests=requests, log=log.getvalue(), wall=wall, rate=rate
        )
    services.cache_clear()
    return figures


def _our_figures(
    deployment: Deployment,
    lambdas: InProcessLambdas,
    execution: Execution,
    *,
    store: Any,
    requests: S3Requests,
    log: str,
    wall: float,
    rate: float,
) -> dict[str, Any]:
    s3 = client("s3")
    layout = Layout(deployment.data_prefix)
    run, summary = execution.run, execution.output["finalize"]["summary"]
    targets = int(run["targets"])
    calls = dict(store.throttler.counters.calls)
    throttled = sum(store.throttler.counters.throttled.values())
    completed = summary["jobs_by_status"].get("COMPLETED", 0)
    # The emulator's truth: one job per target read by the run's session, with this many services.
    expected_rows = sum(len(job.services) for job in store.jobs.values())
    files, snapshot_bytes = _bytes_under(s3, deployment.bucket, layout.partition(ACCESS_DETAILS, run["dt"]))
    _, scratch_bytes = _bytes_under(s3, deployment.bucket, layout.run(run["run_id"]))
    stages = Counter(i.stage for i in lambdas.invocations)
    durations: dict[str, float] = {}
    for invocation in lambdas.invocations:
        durations[invocation.function] = durations.get(invocation.function, 0.0) + invocation.seconds
    logs = _stage_logs(log)
    written = sum(line["rows"] for line in logs)
    write_cpu = sum(line["write_cpu_seconds"] for line in logs)
    counted = transitions(execution)
    event_bytes = len(json.dumps(execution.events + execution.child_events, default=str))
    usage = RunUsage(
        state_transitions=counted["total"],
        lambda_requests=len(lambdas.invocations),
        lambda_gb_seconds=gb_seconds(durations, {name: f.memory_mb for name, f in deployment.functions.items()}),
        s3_put_list=requests.puts_and_lists,
        s3_get=requests.gets,
        stored_bytes=snapshot_bytes + scratch_bytes * 7,  # scratch parts live their 7 days
        log_bytes=len(log.encode()) + event_bytes,
        sns_publishes=1,
        traces=1 + int(run["batches"]),
    )
    floor = 2 * targets / rate
    return {
        "targets": targets,
        "batches": run["batches"],
        "iam_calls": sum(calls.values()),
        "iam_calls_by_operation": calls,
        "iam_calls_per_target": _per(sum(calls.values()), targets),
        "iam_calls_per_target_by_operation": {op: _per(n, targets) for op, n in calls.items()},
        "throttling_errors": throttled,
        "limit_exceeded_errors": store.limit_exceeded,
        "targets_not_completed": targets - completed,
        "rows_lost": expected_rows - summary["rows"],
        "lambda_invocations": dict(stages),
        "lambda_invocations_per_target": _per(sum(stages.values()), targets),
        "state_transitions": counted,
        "state_transitions_per_target": _per(counted["total"], targets),
        "parquet_files": len(files),
        "rows": summary["rows"],
        "parquet_files_per_million_rows": round(len(files) / max(1.0, summary["rows"] / 1e6), 3),
        "snapshot_bytes": snapshot_bytes,
        "write_rows_per_second": round(written / write_cpu) if write_cpu else None,
        "paced_seconds": round(sum(line.get("paced_seconds", 0) for line in logs), 1),
        "wall_seconds": round(wall, 1),
        "floor_seconds": round(floor, 1),
        "wall_to_floor": round(wall / floor, 3),
        "lambda_seconds": {name: round(seconds, 1) for name, seconds in durations.items()},
        "usage": asdict(usage),
        "cost_usd": cost(usage)["total"],
        "cost_by_service_usd": cost(usage),
    }


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


ROWS = (
    ("targets", "targets"),
    ("iam_calls_per_target", "IAM calls / target"),
    ("generate_per_target", "  GenerateOrganizationsAccessReport"),
    ("get_per_target", "  GetOrganizationsAccessReport"),
    ("throttling_errors", "Throttling answers (absorbed)"),
    ("limit_exceeded_errors", "ReportGenerationLimitExceeded (absorbed)"),
    ("rows_lost", "rows lost / targets not completed"),
    ("lambda_invocations_per_target", "Lambda invocations / target"),
    ("state_transitions_per_target", "state transitions / target"),
    ("parquet_files", "Parquet files in the snapshot"),
    ("rows", "rows in the snapshot"),
    ("parquet_files_per_million_rows", "files per 1M rows"),
    ("write_rows_per_second", "normalize+write rows/s"),
    ("wall_seconds", "wall time (s)"),
    ("floor_seconds", "floor: 2 x targets / rate (s)"),
    ("wall_to_floor", "wall / floor"),
    ("paced_seconds", "seconds functions waited for their pace"),
    ("cost_usd", "cost of the run (USD)"),
)


def _cell(figures: dict[str, Any], key: str) -> str:
    by_op = figures.get("iam_calls_per_target_by_operation", {})
    if key == "generate_per_target":
        value: Any = by_op.get("GenerateOrganizationsAccessReport")
    elif key == "get_per_target":
        value = by_op.get("GetOrganizationsAccessReport")
    elif key == "rows_lost":
        value = f"{figures.get('rows_lost', '-')} / {figures.get('targets_not_completed', '-')}"
    else:
        value = figures.get(key, "-")
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4f}" if value < 10 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_table(results: dict[str, Any], out: TextIO) -> None:
    columns = {f"{int(size):,} accounts": figures for size, figures in results["sizes"].items()}
    if "stress" in results:
        columns[f"{results['stress']['accounts']:,} stressed"] = results["stress"]
    header = f"{'':42}" + "".join(f"{name:>24}" for name in columns)
    out.write(header + "\n" + "-" * len(header) + "\n")
    for key, label in ROWS:
        cells = []
        for ours in columns.values():
            base = ours.get("baseline", {})
            cell = _cell(ours, key)
            if key in base or (key in ("generate_per_target", "get_per_target") and base):
                cell = f"{cell} | {_cell(base, key)}"
            cells.append(f"{cell:>24}")
        out.write(f"{label:42}" + "".join(cells) + "\n")
    out.write(
        "(a | b: ours | the naive baseline, whose wall time is its computing time plus the seconds it slept;\n"
        f" stressed: {STRESS_FAILURE_RATE:.0%} of IAM calls throttled at random, IAM admits {STRESS_JOB_CAP} jobs)\n"
    )
    out.write("\nRatios (baseline / ours):\n")
    for size, ours in results["sizes"].items():
        ratios = ours.get("ratios", {})
        out.write(f"  {size} accounts: " + ", ".join(f"{k} {v}x" for k, v in ratios.items()) + "\n")
    memory = results.get("fetch_memory")
    if memory:
        out.write("\nFetch step (one invocation, pages of 100 items):\n")
        for scale, probe_result in memory.items():
            out.write(
                f"  {scale:>3}: {probe_result['targets']} reports, {probe_result['pages']:,} pages, "
                f"{probe_result['rows']:,} rows -> peak RSS {probe_result['peak_rss_mib']} MiB "
                f"(after imports {probe_result['imports_rss_mib']} MiB)\n"
            )
    out.write("\nGoals:\n")
    for goal, met in results["goals"].items():
        out.write(f"  {'met    ' if met['met'] else 'NOT MET'}  {goal}: {met['detail']}\n")


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


def judge(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each goal of the issue, over every size measured."""
    sizes: dict[str, dict[str, Any]] = results["sizes"]
    every = list(sizes.values())

    def worst(key: str) -> float:
        return max(float(s[key]) for s in every)

    goals: dict[str, dict[str, Any]] = {}
    goals["iam_calls_per_target <= 2.1"] = {
        "met": worst("iam_calls_per_target") <= GOALS["iam_calls_per_target"],
        "detail": f"worst {worst('iam_calls_per_target')}",
    }
    goals["state_transitions_per_target <= 0.3"] = {
        "met": worst("state_transitions_per_target") <= GOALS["state_transitions_per_target"],
        "detail": f"worst {worst('state_transitions_per_target')}",
    }
    walls = {size: s["wall_to_floor"] for size, s in sizes.items()}
    goals["wall time <= 1.25 x floor"] = {
        "met": all(v <= GOALS["wall_to_floor"] for v in walls.values()),
        "detail": ", ".join(f"{size}: {v}" for size, v in walls.items()),
    }
    goals["<= 1 Parquet file per 1M rows"] = {
        "met": worst("parquet_files_per_million_rows") <= GOALS["parquet_files_per_million_rows"],
        "detail": ", ".join(
            f"{size}: {s['parquet_files']} file(s) for {s['rows']:,} rows" for size, s in sizes.items()
        ),
    }
    with_base = {size: s for size, s in sizes.items() if "baseline" in s}
    if with_base:
        rates = {size: s["ratios"]["write_rows_per_second"] for size, s in with_base.items()}
        goals["write rate >= 3 x baseline"] = {
            "met": all(v >= GOALS["write_rate_vs_baseline"] for v in rates.values()),
            "detail": ", ".join(f"{size}: {v}x" for size, v in rates.items()),
        }
    memory = results.get("fetch_memory")
    if memory:
        one, ten = memory["1x"], memory["10x"]
        goals["fetch peak memory flat as the report grows 10x"] = {
            "met": ten["peak_rss_mib"] <= 1.15 * one["peak_rss_mib"],
            "detail": f"{one['rows']:,} rows: {one['peak_rss_mib']} MiB; {ten['rows']:,} rows: "
            f"{ten['peak_rss_mib']} MiB (imports alone {one['imports_rss_mib']} MiB)",
        }
    if "10000" in sizes:
        goals["cost of a 10,000-account run <= $0.05"] = {
            "met": sizes["10000"]["cost_usd"] <= GOALS["cost_usd_10000"],
            "detail": f"${sizes['10000']['cost_usd']}",
        }
    runs = {f"{size} accounts": s for size, s in sizes.items()}
    if "stress" in results:
        runs[f"{results['stress']['accounts']} stressed"] = results["stress"]
    goals["every throttle absorbed, nothing lost"] = {
        "met": all(s["rows_lost"] == 0 and s["targets_not_completed"] == 0 for s in runs.values())
        and ("stress" not in results or results["stress"]["throttling_errors"] > 0),
        "detail": ", ".join(
            f"{name}: {s['throttling_errors']} Throttling + {s['limit_exceeded_errors']} limit answers, "
            f"{s['rows_lost']} rows lost"
            for name, s in runs.items()
        ),
    }
    return goals


def run_bench(
    template: dict[str, Any],
    sizes: Sequence[int],
    out: TextIO,
    *,
    rate: float = RATE,
    baseline: bool = True,
    fetch_targets: int | None = FETCH_TARGETS,
    stress: int | None = STRESS_ACCOUNTS,
) -> dict[str, Any]:
    """Every size, the baseline beside each, a stressed run, the fetch probe; the goals judged."""
    LOGS.mkdir(exist_ok=True)
    results: dict[str, Any] = {
        "model": {"iam_calls_per_second": rate, "job_seconds": JOB_SECONDS, "max_jobs_in_progress": 50},
        "sizes": {},
    }
    for accounts in sizes:
        out.write(f"\n# {accounts:,} accounts: the collector\n")
        out.flush()
        figures = run_ours(template, accounts, rate, SEED, out)
        if baseline:
            out.write(f"# {accounts:,} accounts: the baseline\n")
            out.flush()
            figures["baseline"] = run_baseline_size(accounts, rate, SEED)
            figures["ratios"] = _ratios(figures, figures["baseline"])
        results["sizes"][str(accounts)] = figures
    if stress:
        out.write(
            f"\n# {stress:,} accounts, stressed: {STRESS_FAILURE_RATE:.0%} of IAM calls throttled at random, "
            f"IAM admits {STRESS_JOB_CAP} jobs in progress\n"
        )
        figures = run_ours(template, stress, rate, SEED, out, failure_rate=STRESS_FAILURE_RATE, job_cap=STRESS_JOB_CAP)
        results["stress"] = {
            "accounts": stress,
            "failure_rate": STRESS_FAILURE_RATE,
            "max_jobs_in_progress": STRESS_JOB_CAP,
            **figures,
        }
    if fetch_targets:
        out.write("\n# The fetch step's peak RSS, one invocation over a batch and over one ten times larger\n")
        results["fetch_memory"] = {"1x": probe(fetch_targets), "10x": probe(10 * fetch_targets)}
    results["goals"] = judge(results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES), help="accounts per organization")
    parser.add_argument("--rate", type=float, default=RATE, help="IAM report calls per second (one bucket)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive collector")
    parser.add_argument("--no-memory", action="store_true", help="skip the fetch step's memory probe")
    parser.add_argument("--no-stress", action="store_true", help="skip the stressed run")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    out = sys.stdout
    out.write(f"Synthesizing the collector stack (iam_calls_per_second={args.rate:g}) ...\n")
    template = synthesize(DEPLOYED | {"iam_calls_per_second": args.rate})
    results = run_bench(
        template,
        [int(size) for size in args.sizes.split(",") if size],
        out,
        rate=args.rate,
        baseline=not args.no_baseline,
        fetch_targets=None if args.no_memory else FETCH_TARGETS,
        stress=None if args.no_stress else STRESS_ACCOUNTS,
    )
    out.write("\n")
    print_table(results, out)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    out.write(f"\nWrote {args.output}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
