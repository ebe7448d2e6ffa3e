"""A run's figures: what it did, from the counters' growth, its execution histories, its logs, the
day's partition and the emulator's own record of the jobs; its floor; its usage and cost."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import pyarrow.compute as pc

from harness.bench.stand import Stand
from harness.clients import client
from harness.costs import RunUsage, cost, gb_seconds
from harness.executions import Execution, transitions
from harness.virtual_time import ClockStats, LambdaTimes
from iam_report_emulator.iam_model import CapScope
from lambdas.collector.names import Layout
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS
from lambdas.collector.store.storage import get_table, list_keys

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


UNFINISHED = frozenset({"FAILED", "TIMED_OUT", "NOT_STARTED", "INCOMPLETE", "NOT_COLLECTED"})


def _per(value: float, targets: int) -> float:
    return round(value / targets, 4) if targets else 0.0


def _stage_logs(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{") and '"write_cpu_seconds"' in line]


def _bytes_under(s3: S3Client, bucket: str, prefix: str) -> tuple[list[str], int]:
    keys, size = [], 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            keys.append(item["Key"])
            size += item["Size"]
    return keys, size


@dataclass
class Before:
    """The cumulative counters as a run starts (a day's figures are what they added)."""

    calls: dict[str, int]
    throttled: int
    limit_exceeded: int
    reused: int
    invocations: int
    requests: Counter[str]
    clock: ClockStats
    jobs: frozenset[str]
    real: float

    @classmethod
    def of(cls, stand: Stand) -> Before:
        counters = stand.store.throttler.counters
        return cls(
            calls=dict(counters.calls),
            throttled=sum(counters.throttled.values()),
            limit_exceeded=stand.store.limit_exceeded,
            reused=stand.store.reused,
            invocations=len(stand.lambdas.invocations),
            requests=Counter(stand.requests.counts),
            clock=replace(stand.clock.stats),
            jobs=frozenset(stand.store.jobs),
            real=time.monotonic(),
        )


def figures_of(
    stand: Stand, execution: Execution, *, before: Before, times: LambdaTimes, log: str, dt: str, real: float
) -> dict[str, Any]:
    """What the run did, from the counters' growth, its execution histories, its logs, the day's
    partition and the emulator's own record of the jobs."""
    s3 = client("s3")
    deployment, store = stand.deployment, stand.store
    layout = Layout(deployment.data_prefix)
    run = execution.run
    summary = execution.output.get("finalize", {}).get("summary", {})
    targets = int(run.get("targets", 0))
    counters = store.throttler.counters
    calls = {op: n - before.calls.get(op, 0) for op, n in counters.calls.items()}
    throttled = sum(counters.throttled.values()) - before.throttled
    refused = store.limit_exceeded - before.limit_exceeded
    new_jobs = [job for job_id, job in store.jobs.items() if job_id not in before.jobs]
    census = _census(s3, stand, dt, new_jobs)
    files, snapshot_bytes = _bytes_under(s3, deployment.bucket, layout.partition(ACCESS_DETAILS, dt))
    _, scratch_bytes = _bytes_under(s3, deployment.bucket, layout.run(run["run_id"])) if run else ([], 0)
    invocations = stand.lambdas.invocations[before.invocations :]
    stages = Counter(i.stage for i in invocations)
    compute = dict(times.compute)
    billed = {name: times.seconds.get(name, 0.0) + compute.get(name, 0.0) for name in times.seconds}
    logs = _stage_logs(log)
    written = sum(line["rows"] for line in logs)
    write_cpu = sum(line["write_cpu_seconds"] for line in logs)
    counted = transitions(execution)
    event_bytes = len(json.dumps(execution.events + execution.child_events, default=str))
    usage = RunUsage(
        state_transitions=counted["total"],
        lambda_requests=len(invocations),
        lambda_gb_seconds=gb_seconds(billed, {name: f.memory_mb for name, f in deployment.functions.items()}),
        stored_bytes=snapshot_bytes + scratch_bytes * 7,  # scratch parts live their 7 days
        log_bytes=len(log.encode()) + event_bytes,
        sns_publishes=1,
        traces=1 + int(run.get("batches", 0)),
        **stand.requests.usage(before.requests),
    )
    wall = execution.wall_seconds
    floor = _floor(stand, targets, new_jobs)
    clock = stand.clock.stats
    dollars = cost(usage)
    return {
        "status": execution.status,
        "cause": execution.cause,
        "targets": targets,
        "targets_planned": targets,
        "batches": run.get("batches", 0),
        **census,
        "iam_calls": sum(calls.values()),
        "iam_calls_by_operation": calls,
        "iam_calls_per_target": _per(sum(calls.values()), targets),
        "iam_calls_per_target_by_operation": {op: _per(n, targets) for op, n in calls.items()},
        "throttling_errors": throttled,
        "limit_exceeded_errors": refused,
        "throttles_per_target": _per(throttled, targets),
        "refusals_per_target": _per(refused, targets),
        "reused_jobs": store.reused - before.reused,
        "lambda_invocations": dict(stages),
        "lambda_invocations_per_target": _per(sum(stages.values()), targets),
        "state_transitions": counted,
        "state_transitions_per_target": _per(counted["total"], targets),
        "parquet_files": len(files),
        "rows": summary.get("rows", 0),
        "parquet_files_per_million_rows": round(len(files) / max(1.0, summary.get("rows", 0) / 1e6), 3),
        "snapshot_bytes": snapshot_bytes,
        "write_rows_per_second": round(written / write_cpu) if write_cpu else None,
        "paced_seconds": round(sum(line.get("paced_seconds", 0) for line in logs), 1),
        "wall_seconds": round(wall, 1),
        **floor,
        "wall_to_floor": round(wall / floor["floor_seconds"], 3) if floor["floor_seconds"] else None,
        "iam_hours": round(wall / 3600, 2),
        "compute_seconds": round(sum(compute.values()), 1),
        "real_seconds": round(real, 1),
        "lambda_seconds": {name: round(seconds, 1) for name, seconds in billed.items()},
        "lambda_over_timeout": len(times.over_timeout),
        "clock": {
            "jumps": clock.jumps - before.clock.jumps,
            "interrupted_quiet": clock.interrupted_quiet - before.clock.interrupted_quiet,
            "quiet_real_seconds": round(clock.quiet_real_seconds - before.clock.quiet_real_seconds, 2),
        },
        "usage": asdict(usage),
        "cost_usd": dollars["total"],
        "cost_by_service_usd": dollars,
    }


def _floor(stand: Stand, targets: int, jobs: Sequence[Any]) -> dict[str, Any]:
    """The run's floor: two calls per target at IAM's rate, or the report latencies at the concurrency
    IAM admits (its cap, per account; per path, that cap on each path the run reported on)."""
    latency = sum((job.finishes_at - job.created).total_seconds() for job in jobs if job.finishes_at is not None)
    cap = stand.store.settings.job_cap
    per_path = stand.store.settings.model.cap_scope is CapScope.PATH
    admitted = cap * max(1, len({job.path for job in jobs})) if per_path else cap
    by_rate, by_latency = 2 * targets / stand.rate, latency / admitted
    return {
        "report_latency_seconds": round(latency, 1),
        "admitted_concurrency": admitted,
        "floor_rate_seconds": round(by_rate, 1),
        "floor_latency_seconds": round(by_latency, 1),
        "floor_seconds": round(max(by_rate, by_latency), 1),
    }


def _census(s3: S3Client, stand: Stand, dt: str, jobs: Sequence[Any]) -> dict[str, Any]:
    """The day's partition against the organization and the emulator's truth: every target once, what
    was collected and carried, the oldest data, the backlog, and rows lost (a collected report whose
    rows differ from the services IAM reported)."""
    bucket, layout = stand.deployment.bucket, Layout(stand.deployment.data_prefix)
    columns = ["target_path", "policy_id", "target_type", "job_id", "job_status", "carried_forward", "data_age_days"]
    records = _read(s3, bucket, layout.partition(REPORT_JOBS, dt), REPORT_JOBS, columns)
    detail_jobs = _rows_by_job(s3, bucket, layout.partition(ACCESS_DETAILS, dt))
    keys = Counter((r["target_path"], r["policy_id"]) for r in records)
    fresh = [r for r in records if not r["carried_forward"]]
    collected = [r for r in fresh if r["job_status"] == "COMPLETED"]
    collected_keys = {(r["target_path"], r["policy_id"]) for r in collected}
    with_data = [r for r in records if r["carried_forward"] or r["job_status"] == "COMPLETED"]
    truth = {job.job_id: len(job.services) for job in jobs}
    refresh = stand.refresh_days
    overdue = sum(r["data_age_days"] >= refresh for r in with_data)
    missing = max(0, stand.expected_targets - len(keys))
    return {
        "targets_in_partition": len(records),
        "duplicate_targets": sum(n - 1 for n in keys.values()),
        "missing_targets": missing,
        "targets_collected": len(collected),
        "targets_carried": len(records) - len(fresh),
        "targets_without_data": len(records) - len(with_data),
        "targets_not_completed": sum(r["job_status"] in UNFINISHED for r in fresh),
        "job_statuses": dict(Counter(r["job_status"] for r in fresh)),
        "root_and_ous_collected": all(
            (r["target_path"], r["policy_id"]) in collected_keys
            for r in records
            if r["target_type"] in ("ROOT", "ORGANIZATIONAL_UNIT")
        ),
        "oldest_age_days": max((r["data_age_days"] for r in with_data), default=None),
        "backlog": len(records) - len(with_data) + overdue + missing,
        "rows_lost": sum(abs(truth.get(r["job_id"], 0) - detail_jobs[r["job_id"]]) for r in collected),
    }


def _rows_by_job(s3: S3Client, bucket: str, prefix: str) -> Counter[str]:
    """Rows per job id of the partition's access details collected that day (not carried)."""
    counts: Counter[str] = Counter()
    for key in list_keys(s3, bucket, prefix):
        table = get_table(s3, bucket, key, ACCESS_DETAILS, ["job_id", "carried_forward"])
        fresh = table.filter(pc.invert(table["carried_forward"]))
        counts.update({row["values"]: row["counts"] for row in pc.value_counts(fresh["job_id"]).to_pylist()})
    return counts


def _read(s3: S3Client, bucket: str, prefix: str, dataset: Any, columns: list[str]) -> list[dict[str, Any]]:
    """The partition's rows (`prefix` ends in `dt=/` when the run made no partition: nothing)."""
    rows: list[dict[str, Any]] = []
    for key in list_keys(s3, bucket, prefix):
        rows.extend(get_table(s3, bucket, key, dataset, columns).to_pylist())
    return rows
