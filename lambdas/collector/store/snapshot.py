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
   failed; a target deferred with no earlier report is recorded DEFERRED. A rerun on the same day
   replaces the day's files: new files are written first, old ones deleted after; if writing
   fails, what was written is removed and the old files stay.
Rows are streamed part by part into files of at most `rows_per_file` rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from itertools import chain
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from lambdas.collector.collect.plan import Plan, Reason
from lambdas.collector.models import Batch, JobStatus, RunContext, SnapshotSummary, Target
from lambdas.collector.names import Layout
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS, Dataset
from lambdas.collector.store.storage import (
    RollingParquetWriter,
    get_json,
    list_keys,
    list_partitions,
    read_tables,
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


class _Writer:
    """Writes the new files of both datasets; removes them again if anything fails."""

    def __init__(self, s3: S3Client, bucket: str, layout: Layout, run: RunContext, rows_per_file: int) -> None:
        self.s3, self.bucket, self.layout, self.run, self.rows_per_file = s3, bucket, layout, run, rows_per_file
        self.written: list[str] = []

    def dataset(self, dataset: Dataset, tables: Iterable[pa.Table]) -> tuple[list[str], int]:
        writer = RollingParquetWriter(
            self.s3,
            self.bucket,
            dataset,
            lambda n: self.layout.snapshot_file(dataset, self.run.dt, self.run.run_id, n),
            self.rows_per_file,
        )
        try:
            for table in tables:
                writer.write(table)
            keys = writer.close()
        finally:
            self.written.extend(writer.keys)
        return keys, writer.rows

    def roll_back(self) -> None:
        _delete(self.s3, self.bucket, self.written)


def _delete(s3: S3Client, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True})


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

    # The day's earlier files: anything in the partitions not written by this run.
    own = {ds.name: f"{layout.partition(ds, run.dt)}{run.run_id}-" for ds in (ACCESS_DETAILS, REPORT_JOBS)}
    existing = {ds.name: list_keys(s3, bucket, layout.partition(ds, run.dt)) for ds in (ACCESS_DETAILS, REPORT_JOBS)}
    earlier = {name: [k for k in keys if not k.startswith(own[name])] for name, keys in existing.items()}
    sources = [earlier, *_previous_partition(s3, bucket, layout, run.dt)]
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

    writer = _Writer(s3, bucket, layout, run, rows_per_file)
    try:
        access_keys, rows = writer.dataset(
            ACCESS_DETAILS,
            chain(  # streamed: one part in memory at a time
                _only_jobs(read_tables(s3, bucket, part_keys[ACCESS_DETAILS.name], ACCESS_DETAILS), complete),
                *(
                    _carried(
                        run, _only_jobs(read_tables(s3, bucket, source[ACCESS_DETAILS.name], ACCESS_DETAILS), jobs)
                    )
                    for n, source in enumerate(sources)
                    if (jobs := {r["job_id"] for r, origin in chosen.values() if origin == n})
                ),
            ),
        )
        jobs_table = pa.Table.from_pylist(
            [{**REPORT_JOBS.defaults, **r} for r in records + carried + deferred], schema=REPORT_JOBS.arrow_schema
        )
        job_keys, _ = writer.dataset(REPORT_JOBS, [jobs_table])
    except Exception:
        writer.roll_back()
        raise
    new = set(access_keys) | set(job_keys)
    stale = [key for keys in existing.values() for key in keys if key not in new]
    _delete(s3, bucket, stale)
    return SnapshotSummary(
        run_id=run.run_id,
        dt=run.dt,
        targets=len(records),
        jobs_by_status=dict(Counter(JobStatus(r["job_status"]) for r in records)),
        rows=rows,
        carried_over_targets=len(carried),
        deferred_targets=len(deferred),
        files={ACCESS_DETAILS.name: len(access_keys), REPORT_JOBS.name: len(job_keys)},
        replaced_files=len(stale),
    )


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
    """Each wanted target's latest COMPLETED record across `sources`, with the index of its source
    (the earlier source wins a tie: the day's own earlier run before the previous day)."""
    chosen: dict[Key, tuple[dict[str, Any], int]] = {}
    for n, source in enumerate(sources):
        for table in read_tables(s3, bucket, source[REPORT_JOBS.name], REPORT_JOBS):
            done = table.filter(pc.equal(table["job_status"], JobStatus.COMPLETED.value))
            for record in done.to_pylist():
                key = _key(record)
                if key in wanted and (key not in chosen or chosen[key][0]["collected_at"] < record["collected_at"]):
                    chosen[key] = (record, n)
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
