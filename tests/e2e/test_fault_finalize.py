"""Fault case 3 through the deployed definition: finalize dies after writing part of a same-day rerun's
files and before removing anything, and a query in between never counts a target twice.

A target's rows always live in the same file of the day (`part-BBBBB-of-NNNNN.parquet`, B a hash of the
target, N fixed by the day's first run), and a rerun uploads each file over the one of the same key, so
at any moment each target is in exactly one file: the earlier run's or the rerun's
(`lambdas.collector.store.snapshot`). The next run completes the day.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from harness.clients import client
from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.names import Function, Layout
from lambdas.collector.store import snapshot as snapshot_module
from lambdas.collector.store.schema import ACCESS_DETAILS, DATASETS
from lambdas.collector.store.storage import bucket_of, list_keys
from lambdas.collector.store.storage import upload_file as real_upload
from tests.e2e.conftest import FAST, Collector, move_back_one_day
from tests.helpers import organization_targets

EVERY_ACCOUNT_DUE = {**FAST, "account_refresh_days": 1}


# Lambda's timeout as Step Functions names it (the harness reports an exception by its class name).
Timedout: type[Exception] = type("Sandbox.Timedout", (Exception,), {"__doc__": "Lambda's timeout"})


class FinalizeKilled(Exception):
    """finalize's invocation dying: the harness reports it as a function error of this type."""


def once_per_target(details: pa.Table) -> dict[str, str]:
    """Each target's run; asserts every target's rows come from one report and are all there."""
    paths = details["target_path"].to_pylist()
    jobs: dict[str, set[str]] = {}
    for path, job in zip(paths, details["job_id"].to_pylist(), strict=True):
        jobs.setdefault(path, set()).add(job)
    assert {path: len(found) for path, found in jobs.items() if len(found) > 1} == {}
    assert Counter(paths) == dict(zip(paths, details["services_accessible"].to_pylist(), strict=True))
    return dict(zip(paths, details["run_id"].to_pylist(), strict=True))


def day(collector: Collector, dt: str) -> dict[str, pa.Table]:
    """The day's partition of each dataset, as a query with `WHERE dt = …` reads it."""
    return {
        name: table.filter(pc.equal(table["dt"], dt)).drop_columns(["dt"]) for name, table in collector.tables().items()
    }


def spread_over_files(collector: Collector) -> Layout:
    """Files of 1,000 rows (the finalize function's ROWS_PER_FILE), so a day is spread over several; the layout."""
    finalize = next(f for f in collector.deployment.functions.values() if f.stage == Function.FINALIZE)
    finalize.environment["ROWS_PER_FILE"] = "1000"
    return Layout(collector.deployment.data_prefix)


def etags(s3: Any, bucket: str, layout: Layout, dt: str) -> dict[str, str]:
    keys = [key for dataset in DATASETS for key in list_keys(s3, bucket, layout.partition(dataset, dt))]
    return {key: s3.head_object(Bucket=bucket, Key=key)["ETag"] for key in keys}


def test_finalize_dying_between_uploads_never_shows_a_target_twice_and_the_next_run_completes_the_day(
    collector: Collector, demo_org: OrganizationSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, deployment, layout = client("s3"), collector.deployment, spread_over_files(collector)
    # Given the previous day, and the day's first run
    assert collector.run().status == "SUCCEEDED"
    dt = collector.tables()["report_jobs"]["collected_at"][0].as_py().date().isoformat()
    yesterday = move_back_one_day(collector, dt)
    yesterday_files = etags(s3, deployment.bucket, layout, yesterday)
    first = collector.run()
    assert first.status == "SUCCEEDED", first.cause
    before = day(collector, dt)
    first_runs = once_per_target(before["access_details"])
    access_files = list_keys(s3, deployment.bucket, layout.partition(ACCESS_DETAILS, dt))
    assert len(access_files) >= 4

    # When a full rerun's finalize dies after uploading 3 of its files
    uploads: list[str] = []

    def upload(s3: Any, bucket: str, key: str, path: Any) -> None:
        if len(uploads) == 3:
            raise FinalizeKilled("the invocation ended after 3 of the day's files")
        real_upload(s3, bucket, key, path)
        uploads.append(key)

    monkeypatch.setattr(snapshot_module, "upload_file", upload)
    rerun = collector.run(EVERY_ACCOUNT_DUE)

    # Then the run is FAILED with one message naming the error, and a query in between counts every
    # target once, all of its rows, each from one run or the other
    assert rerun.status == "FAILED"
    (message,) = [m for m in collector.alerts() if m["Subject"].endswith("run failed")]
    assert json.loads(message["Message"])["error"] == "FinalizeKilled"
    between = day(collector, dt)
    runs = once_per_target(between["access_details"])
    assert set(runs) == set(first_runs)
    # the targets of the 3 files uploaded are the rerun's; every other target is as the first run left it
    replaced = {p for p in runs if bucket_of(p, None, len(access_files)) < len(uploads)}
    assert runs == {p: rerun.run["run_id"] if p in replaced else first_runs[p] for p in runs}
    assert 0 < len(replaced) < len(runs)
    assert between["report_jobs"].equals(before["report_jobs"])  # uploaded last: not reached
    assert list_keys(s3, deployment.bucket, layout.partition(ACCESS_DETAILS, dt)) == access_files

    # And the next run completes the day, even though Lambda kills its finalize (its timeout) after 2 uploads
    # once: the state machine retries finalize, which writes the whole day again
    uploads.clear()

    def upload_then_time_out_once(s3: Any, bucket: str, key: str, path: Any) -> None:
        if len(uploads) == 2:
            uploads.append("killed")
            raise Timedout("Task timed out after 900.00 seconds")
        real_upload(s3, bucket, key, path)
        uploads.append(key)

    monkeypatch.setattr(snapshot_module, "upload_file", upload_then_time_out_once)
    final = collector.run(EVERY_ACCOUNT_DUE)
    assert final.status == "SUCCEEDED", final.cause
    killed = [(i.stage, i.error) for i in collector.lambdas.invocations if i.error]
    assert killed == [(Function.FINALIZE.value, "FinalizeKilled"), (Function.FINALIZE.value, "Sandbox.Timedout")]
    assert len(uploads) == 2 + 1 + len(access_files) + 1  # 2, the kill, then every file again
    assert [m for m in collector.alerts() if m["Subject"].endswith("run failed")] == []  # none since the rerun
    after = day(collector, dt)
    final_runs = once_per_target(after["access_details"])
    assert set(final_runs) == set(first_runs)
    assert set(final_runs.values()) == {final.run["run_id"]}
    assert after["access_details"].num_rows == sum(j["rows_written"] for j in after["report_jobs"].to_pylist())
    assert len(after["report_jobs"]) == organization_targets(demo_org)
    assert list_keys(s3, deployment.bucket, layout.partition(ACCESS_DETAILS, dt)) == access_files
    assert etags(s3, deployment.bucket, layout, yesterday) == yesterday_files
