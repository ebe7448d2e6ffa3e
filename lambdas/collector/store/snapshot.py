"""finalize: the run's parts become the day's snapshot of `access_details` and `report_jobs`.

1. Job records are reconciled with the manifest: a target whose batch never reported it is
   recorded NOT_COLLECTED, never silently dropped.
2. Each completed job is checked: its rows must number `NumberOfServicesAccessible`, and those with
   no last access `NumberOfServicesNotAccessed`. A mismatch makes it INCOMPLETE and keeps its rows
   out of the snapshot, so no query counts a partial report.
3. Every day is complete: each target of the run's plan (`runs/{run}/plan.json`: collected this
   run or deferred by the plan) is in the day's `access_details` exactly once. A target not
   completed by this run (deferred, or planned but FAILED, TIMED_OUT, …) is carried forward from
   its latest earlier report: the day's earlier run if any, else the latest earlier partition,
   which is itself complete. Carried rows keep that report's run_id, job and `collected_at`, with
   `carried_forward` true and `data_age_days` (from its `collected_at` to `dt`); its `report_jobs`
   record is carried with them. So `report_jobs` has exactly one COMPLETED record per target with
   data (the one its `access_details` rows came from) plus this run's record of each target that
   failed; a target deferred with no earlier report is recorded DEFERRED.
4. A query never counts a target twice, even while a rerun replaces the day: a target's rows always
   live in the same file of the day, `part-BBBBB-of-NNNNN.parquet` with B a hash of the target
   (`storage.bucket_of`) and N chosen by the day's first run (`rows_per_file` rows each). A rerun
   writes every file of the day to local disk first, then uploads each over the file of the same key
   (`access_details` first, `report_jobs` last): at any moment each target is in exactly one file,
   old or new. Only then are files no longer written deleted. A run that dies between two uploads
   leaves files whose targets are each counted once; the next run passes over a record whose rows a
   replaced file no longer holds (`_latest_reports`).
Rows are streamed part by part; one part and a row group per file are in memory at a time.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from lambdas.collector.collect.plan import Plan, Reason
from lambdas.collector.models import Batch, JobStatus, RunContext, SnapshotSummary, Target
from lambdas.collector.names import Layout, snapshot_buckets
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS
from lambdas.collector.store.storage import (
    BucketedParquetWriter,
    delete_keys,
    get_json,
    list_keys,
    list_partitions,
    read_tables,
    upload_file,
)

if TYPE_CHECKING:  # the boto3 stubs are a development dependency, never bundled
    from mypy_boto3_s3 import S3Client

Key = tuple[str, str | None]


@dataclass(frozen=True)
class RowCounts:
    rows: int
    never_accessed: int


def count_rows(tables: Iterable[pa.Table]) -> dict[str, RowCounts]:
    """Rows and never-accessed rows per job id, from the `job_id` and `accessed` columns."""
    rows: Counter[str] = Counter()
    never: Counter[str] = Counter()
    for table in tables:
        if not table.num_rows:
            continue
        grouped = table.group_by("job_id").aggregate([("accessed", "count"), ("accessed", "sum")])
        for job_id, total, accessed in zip(
            grouped["job_id"].to_pylist(),
            grouped["accessed_count"].to_pylist(),
            grouped["accessed_sum"].to_pylist(),
            strict=True,
        ):
            rows[job_id] += total
            never[job_id] += total - (accessed or 0)
    return {job_id: RowCounts(rows[job_id], never[job_id]) for job_id in rows}


def not_collected(run: RunContext, batch: Batch, target: Target) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "collected_at": run.collected_at,
        "organization_id": run.organization_id,
        "target_path": target.path,
        "target_type": target.type.value,
        "target_id": target.id,
        "target_name": target.name,
        "policy_id": target.policy_id,
        "job_id": None,
        "job_creation_date": None,
        "job_completion_date": None,
        "job_status": JobStatus.NOT_COLLECTED.value,
        "services_accessible": None,
        "services_not_accessed": None,
        "rows_written": 0,
        "pages": 0,
        "iam_calls": 0,
        "error_code": "NotCollected",
        "error_message": f"batch {batch.batch} ended without reporting this target",
    }


def check(record: dict[str, Any], counts: dict[str, RowCounts]) -> dict[str, Any]:
    """The record with its status and rows_written as the snapshot will hold them."""
    if record["job_status"] != JobStatus.COMPLETED.value:
        return {**record, "rows_written": 0}
    found = counts.get(record["job_id"], RowCounts(0, 0))
    expected = RowCounts(record["services_accessible"] or 0, record["services_not_accessed"] or 0)
    if found == expected:
        return {**record, "rows_written": found.rows}
    return {
        **record,
        "job_status": JobStatus.INCOMPLETE.value,
        "rows_written": 0,
        "error_code": "RowCountMismatch",
        "error_message": (
            f"read {found.rows} rows ({found.never_accessed} never accessed); the report says "
            f"{expected.rows} accessible ({expected.never_accessed} not accessed)"
        ),
    }


def _key(record: dict[str, Any]) -> Key:
    return (record["target_path"], record["policy_id"])


def _only_jobs(tables: Iterable[pa.Table], job_ids: set[str]) -> Iterable[pa.Table]:
    wanted = pa.array(sorted(job_ids), pa.string())
    for table in tables:
        kept = table.filter(pc.is_in(table["job_id"], value_set=wanted))
        if kept.num_rows:
            yield kept


def day_buckets(existing: list[str], rows: int, rows_per_file: int) -> int:
    """How many files a day's `access_details` is spread over: what the day's first run chose (read from
    its keys), else enough for `rows_per_file` rows each. A rerun never changes it, so every target's
    rows stay in the same file all day."""
    chosen = [n for key in existing if (n := snapshot_buckets(key))]
    return max(chosen) if chosen else max(1, math.ceil(rows / rows_per_file))


def finalize(run: RunContext, s3: S3Client, rows_per_file: int) -> SnapshotSummary:
    bucket, layout = run.bucket, run.layout  # where the run's data lives, decided by discover
    manifest = [Batch.model_validate(item) for item in get_json(s3, bucket, run.manifest_key)]
    plan = _plan(s3, run, manifest)
    reasons = {d.target.key: d.reason.value for d in plan.decisions}
    part_keys = {ds.name: list_keys(s3, bucket, layout.parts(run.run_id, ds)) for ds in (ACCESS_DETAILS, REPORT_JOBS)}

    reported: dict[Key, dict[str, Any]] = {}
    for table in read_tables(s3, bucket, part_keys[REPORT_JOBS.name], REPORT_JOBS):
        for record in table.to_pylist():
            reported[_key(record)] = record
    counts = count_rows(read_tables(s3, bucket, part_keys[ACCESS_DETAILS.name], ACCESS_DETAILS, ["job_id", "accessed"]))
    records: list[dict[str, Any]] = []
    for batch in manifest:
        for target in batch.targets:
            record = reported.get(target.key)
            record = check(record, counts) if record else not_collected(run, batch, target)
            records.append({**record, "plan": reasons.get(target.key)})
    complete = {r["job_id"] for r in records if r["job_status"] == JobStatus.COMPLETED.value}
    done = {_key(r) for r in records if r["job_status"] == JobStatus.COMPLETED.value}

    # The day's files as they are (an earlier run's, or this run's own from an attempt that died), then
    # the latest earlier day's: where reports not completed by this run are carried from.
    existing = {ds.name: list_keys(s3, bucket, layout.partition(ds, run.dt)) for ds in (ACCESS_DETAILS, REPORT_JOBS)}
    sources = [existing, *_previous_partition(s3, bucket, layout, run.dt)]
    chosen = _latest_reports(s3, bucket, sources, {d.target.key for d in plan.decisions} - done)
    carried = [
        {**record, "carried_forward": True, "data_age_days": _age(run, record), "plan": reasons[_key(record)]}
        for record, _ in chosen.values()
    ]
    deferred = [
        deferred_record(run, d.target, d.reason)
        for d in plan.decisions
        if not d.reason.planned and d.target.key not in chosen
    ]
    expected_rows = sum(r["rows_written"] for r in records if r["job_status"] == JobStatus.COMPLETED.value) + sum(
        r["rows_written"] for r in carried
    )
    buckets = day_buckets(existing[ACCESS_DETAILS.name], expected_rows, rows_per_file)
    old = [key for keys in existing.values() for key in keys]  # the day's files before this run's

    with tempfile.TemporaryDirectory(prefix="snapshot-") as scratch:
        # Everything is read and written to local files first: S3 is not touched until it all succeeded.
        access = BucketedParquetWriter(ACCESS_DETAILS, buckets, Path(scratch))
        for table in chain(  # streamed: one part in memory at a time
            _only_jobs(read_tables(s3, bucket, part_keys[ACCESS_DETAILS.name], ACCESS_DETAILS), complete),
            *(
                _carried(run, _only_jobs(read_tables(s3, bucket, source[ACCESS_DETAILS.name], ACCESS_DETAILS), jobs))
                for n, source in enumerate(sources)
                if (jobs := {r["job_id"] for r, origin in chosen.values() if origin == n})
            ),
        ):
            access.write(table)
        jobs_file = BucketedParquetWriter(REPORT_JOBS, 1, Path(scratch))
        jobs_file.write(
            pa.Table.from_pylist(
                [{**REPORT_JOBS.defaults, **r} for r in records + carried + deferred], schema=REPORT_JOBS.arrow_schema
            )
        )
        files = [
            *((layout.snapshot_file(ACCESS_DETAILS, run.dt, n, buckets), f) for n, f in enumerate(access.close())),
            (layout.snapshot_file(REPORT_JOBS, run.dt, 0, 1), jobs_file.close()[0]),
        ]
        _publish(s3, bucket, files, set(old))
    new = {key for key, _ in files}
    delete_keys(s3, bucket, [key for key in old if key not in new])
    return SnapshotSummary(
        run_id=run.run_id,
        dt=run.dt,
        targets=len(records),
        jobs_by_status=dict(Counter(JobStatus(r["job_status"]) for r in records)),
        rows=access.rows,
        carried_over_targets=len(carried),
        deferred_targets=len(deferred),
        files={ACCESS_DETAILS.name: buckets, REPORT_JOBS.name: 1},
        replaced_files=len(old),
    )


def _publish(s3: S3Client, bucket: str, files: list[tuple[str, Path]], existing: set[str]) -> None:
    """Uploads the day's files, `access_details` first and `report_jobs` last. Each replaces the file of the
    same key, which holds the same targets, so a query in between counts every target once. If an
    upload fails, the files that had no earlier version are removed again; those that replaced one stay
    (their targets' newer rows, still each target once)."""
    uploaded: list[str] = []
    try:
        for key, path in files:
            upload_file(s3, bucket, key, path)
            uploaded.append(key)
    except Exception:
        delete_keys(s3, bucket, [key for key in uploaded if key not in existing])
        raise


def _plan(s3: S3Client, run: RunContext, manifest: list[Batch]) -> Plan:
    """The run's plan; a run without one (written before plans existed) planned its manifest."""
    try:
        return Plan.from_json(get_json(s3, run.bucket, run.layout.plan(run.run_id)))
    except s3.exceptions.NoSuchKey:
        return Plan.from_json(
            [{"target": t.model_dump(mode="json"), "reason": Reason.DUE.value} for b in manifest for t in b.targets]
        )


def _previous_partition(s3: S3Client, bucket: str, layout: Layout, dt: str) -> list[dict[str, list[str]]]:
    """The files of the latest partition before `dt`, if any (it holds every target's latest report)."""
    days = [day for day in list_partitions(s3, bucket, layout, REPORT_JOBS) if day < dt]
    if not days:
        return []
    return [{ds.name: list_keys(s3, bucket, layout.partition(ds, days[-1])) for ds in (ACCESS_DETAILS, REPORT_JOBS)}]


def _latest_reports(
    s3: S3Client, bucket: str, sources: list[dict[str, list[str]]], wanted: set[Key]
) -> dict[Key, tuple[dict[str, Any], int]]:
    """Each wanted target's latest COMPLETED record across `sources` whose rows are all in that source, with
    the index of the source (the earlier source wins a tie: the day's own files before the previous day's).

    A record whose rows are not all there (a file of the day replaced by a run that died before its
    `report_jobs` file) is passed over for the next one, so a carried report is never partial."""
    options: dict[Key, list[tuple[dict[str, Any], int]]] = {}
    for n, source in enumerate(sources):
        for table in read_tables(s3, bucket, source[REPORT_JOBS.name], REPORT_JOBS):
            done = table.filter(pc.equal(table["job_status"], JobStatus.COMPLETED.value))
            for record in done.to_pylist():
                if (key := _key(record)) in wanted:
                    options.setdefault(key, []).append((record, n))
    counts: dict[int, dict[str, RowCounts]] = {}
    for n, source in enumerate(sources):
        if jobs := {record["job_id"] for found in options.values() for record, m in found if m == n}:
            columns = read_tables(s3, bucket, source[ACCESS_DETAILS.name], ACCESS_DETAILS, ["job_id", "accessed"])
            counts[n] = count_rows(_only_jobs(columns, jobs))
    chosen: dict[Key, tuple[dict[str, Any], int]] = {}
    for key, found in options.items():
        for record, n in sorted(found, key=lambda option: (-option[0]["collected_at"].timestamp(), option[1])):
            if (checked := check(record, counts.get(n, {})))["job_status"] == JobStatus.COMPLETED.value:
                chosen[key] = (checked, n)
                break
    return chosen


def _age(run: RunContext, record: dict[str, Any]) -> int:
    collected: datetime = record["collected_at"]
    return (date.fromisoformat(run.dt) - collected.astimezone(UTC).date()).days


def _carried(run: RunContext, tables: Iterable[pa.Table]) -> Iterable[pa.Table]:
    """Rows of earlier reports as carried into the run's day: flagged, with their age in days."""
    schema = ACCESS_DETAILS.arrow_schema
    day = pa.scalar(datetime.combine(date.fromisoformat(run.dt), time(), UTC), schema.field("collected_at").type)
    for table in tables:
        columns = {
            "carried_forward": pa.array([True] * table.num_rows, pa.bool_()),
            "data_age_days": pc.days_between(table["collected_at"], day).cast(pa.int32()),
        }
        for name, values in columns.items():
            table = table.set_column(schema.get_field_index(name), schema.field(name), values)
        yield table


def deferred_record(run: RunContext, target: Target, reason: Reason) -> dict[str, Any]:
    """The record of a target the plan left to a later run and that has no earlier report to carry."""
    return {
        **not_collected(run, Batch(batch=0, targets=[target]), target),
        "job_status": JobStatus.DEFERRED.value,
        "plan": reason.value,
        "error_code": None,
        "error_message": None,
    }
