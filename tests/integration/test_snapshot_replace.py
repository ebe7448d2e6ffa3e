"""A rerun replacing a day's snapshot while queries read it: each target is in exactly one file of the day,
old or new, at every moment — including when finalize dies between two uploads."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.names import Layout, snapshot_buckets
from lambdas.collector.store import snapshot as snapshot_module
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS, Dataset
from lambdas.collector.store.storage import bucket_of, get_table, list_keys, upload_file
from tests.collector_run import BUCKET, run_by_hand, snapshot
from tests.helpers import rows_of

DAY = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
DT = "2026-11-24"
LAYOUT = Layout()
EVERY_ACCOUNT_DUE = {"account_refresh_days": 1}


class Killed(BaseException):
    """The function dying (a timeout or a crash): no `except Exception` of ours runs."""


@pytest.fixture
def small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files of 1,000 rows, so the demo organization's ~6,000 rows are spread over several."""
    monkeypatch.setenv("ROWS_PER_FILE", "1000")


def targets_counted_once(details: pa.Table, jobs: pa.Table) -> dict[str, str]:
    """Each target's run, asserting what a query must see: every target's rows from one report, all of them."""
    by_target: dict[str, set[str]] = {}
    for path, job in zip(details["target_path"].to_pylist(), details["job_id"].to_pylist(), strict=True):
        by_target.setdefault(path, set()).add(job)
    assert all(len(found) == 1 for found in by_target.values()), "a target's rows come from two reports"
    rows = Counter(details["target_path"].to_pylist())
    expected = dict(zip(details["target_path"].to_pylist(), details["services_accessible"].to_pylist(), strict=True))
    assert rows == expected, "a target's rows are not all there"
    runs = dict(zip(details["target_path"].to_pylist(), details["run_id"].to_pylist(), strict=True))
    assert len(jobs) > 0
    return runs


def files_of_day(s3: Any) -> list[str]:
    return keys_of(s3, ACCESS_DETAILS) + keys_of(s3, REPORT_JOBS)


def keys_of(s3: Any, dataset: Dataset) -> list[str]:
    return list_keys(s3, BUCKET, LAYOUT.partition(dataset, DT))


@dataclass
class Death:
    """finalize dies after uploading `after` more files (None: it lives)."""

    after: int | None = None
    uploads: int = 0

    def at(self, after: int | None) -> None:
        self.after, self.uploads = after, 0


@pytest.fixture
def dies_after(monkeypatch: pytest.MonkeyPatch) -> Death:
    death = Death()

    def upload(s3: Any, bucket: str, key: str, path: Any) -> None:
        if death.after is not None and death.uploads >= death.after:
            raise Killed(f"killed after {death.uploads} uploads")
        upload_file(s3, bucket, key, path)
        death.uploads += 1

    monkeypatch.setattr(snapshot_module, "upload_file", upload)
    return death


def test_a_days_files_are_one_per_bucket_and_each_target_lives_in_its_own(
    s3: Any, demo_org: OrganizationSpec, small_files: None
) -> None:
    run = run_by_hand(s3, "first", DAY)
    details, jobs = snapshot(s3, DT)
    keys = keys_of(s3, ACCESS_DETAILS)
    buckets = len(keys)
    assert run.snapshot is not None
    assert buckets == run.snapshot["files"]["access_details"] == -(-details.num_rows // 1000)  # ceil
    assert {snapshot_buckets(key) for key in keys} == {buckets}
    assert keys_of(s3, REPORT_JOBS) == [LAYOUT.snapshot_file(REPORT_JOBS, DT, 0, 1)]
    for n, key in enumerate(keys):
        assert key == LAYOUT.snapshot_file(ACCESS_DETAILS, DT, n, buckets)
        table = get_table(s3, BUCKET, key, ACCESS_DETAILS)
        assert {bucket_of(p, None, buckets) for p in table["target_path"].to_pylist()} <= {n}
    targets_counted_once(details, jobs)


@pytest.mark.parametrize("uploads", [1, 3, "all access files"])
def test_a_rerun_dying_between_uploads_never_shows_a_target_twice_and_the_next_run_completes_the_day(
    s3: Any, demo_org: OrganizationSpec, small_files: None, dies_after: Death, uploads: int | str
) -> None:
    # Given the day's first run, its files spread over several buckets
    run_by_hand(s3, "first", DAY)
    first, _ = snapshot(s3, DT)
    files_before = files_of_day(s3)
    access_files = len(keys_of(s3, ACCESS_DETAILS))
    assert access_files >= 4
    # When a rerun that collects every target again dies after uploading some of its files
    replaced = access_files if uploads == "all access files" else int(uploads)
    dies_after.at(replaced)
    with pytest.raises(Killed):
        run_by_hand(s3, "rerun", DAY.replace(hour=9), options=EVERY_ACCOUNT_DUE)
    # Then a query in between counts every target exactly once, all of its rows, from one run or the other
    between, jobs_between = snapshot(s3, DT)
    runs = targets_counted_once(between, jobs_between)
    assert set(runs) == set(first["target_path"].to_pylist())
    # the targets of the files uploaded before it died are the rerun's, the others still the first run's
    assert runs == {p: "rerun" if bucket_of(p, None, access_files) < replaced else "first" for p in runs}
    assert "rerun" in runs.values()
    assert rows_of(between) == rows_of(first)
    assert files_of_day(s3) == files_before  # the same keys: nothing to delete, nothing extra
    assert set(jobs_between["run_id"].to_pylist()) == {"first"}  # report_jobs is uploaded last
    # And when the next run completes, the day is its data, every target once
    dies_after.at(None)
    final = run_by_hand(s3, "third", DAY.replace(hour=10), options=EVERY_ACCOUNT_DUE)
    details, jobs = snapshot(s3, DT)
    assert set(targets_counted_once(details, jobs).values()) == {"third"}
    assert rows_of(details) == rows_of(first)
    assert files_of_day(s3) == files_before
    assert final.snapshot is not None
    assert final.snapshot["replaced_files"] == len(files_before)


def test_a_carried_report_whose_rows_a_dead_run_replaced_is_not_carried_partially(
    s3: Any, demo_org: OrganizationSpec, small_files: None, dies_after: Death
) -> None:
    # Given a previous day and the day's first run
    run_by_hand(s3, "yesterday", DAY.replace(day=23))
    run_by_hand(s3, "first", DAY)
    first, _ = snapshot(s3, DT)
    # And a rerun that collected every target and died after its access files, before report_jobs
    dies_after.at(len(keys_of(s3, ACCESS_DETAILS)))
    with pytest.raises(Killed):
        run_by_hand(s3, "rerun", DAY.replace(hour=9), options=EVERY_ACCOUNT_DUE)
    # When the next run collects only roots and OUs (accounts not due) and carries the accounts
    dies_after.at(None)
    final = run_by_hand(s3, "third", DAY.replace(hour=10))
    details, jobs = snapshot(s3, DT)
    # Then the day's report_jobs named the first run's jobs, whose rows the dead run replaced: every
    # account is carried from a source holding all of its rows (yesterday's), never partially
    runs = targets_counted_once(details, jobs)
    assert final.snapshot is not None
    carried = {p: r for p, r in runs.items() if r != "third"}
    assert carried, "accounts were carried"
    assert set(carried.values()) == {"yesterday"}
    assert rows_of(details) == rows_of(first)
    completed = jobs.filter(pa.compute.equal(jobs["job_status"], "COMPLETED"))
    paths = completed["target_path"].to_pylist()
    assert len(paths) == len(set(paths))  # one COMPLETED record per target
    assert set(runs) <= set(paths)


def test_a_day_written_before_files_were_bucketed_is_replaced_and_its_old_files_deleted(
    s3: Any, demo_org: OrganizationSpec
) -> None:
    run_by_hand(s3, "first", DAY)
    first, _ = snapshot(s3, DT)
    # Given the day's files under the names of earlier versions ({run_id}-NNNNN.parquet)
    legacy = []
    for key in files_of_day(s3):
        old = key.rsplit("/", 1)[0] + "/first-00000.parquet"
        s3.copy_object(Bucket=BUCKET, Key=old, CopySource={"Bucket": BUCKET, "Key": key})
        s3.delete_object(Bucket=BUCKET, Key=key)
        legacy.append(old)
    # When a rerun replaces the day
    run_by_hand(s3, "rerun", DAY.replace(hour=9), options=EVERY_ACCOUNT_DUE)
    # Then only the new files remain
    assert not set(legacy) & set(files_of_day(s3))
    details, jobs = snapshot(s3, DT)
    assert set(targets_counted_once(details, jobs).values()) == {"rerun"}
    assert rows_of(details) == rows_of(first)
