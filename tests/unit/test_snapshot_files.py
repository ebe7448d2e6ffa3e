"""Where a target's rows live in a day's snapshot: its bucket, the same in every run."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lambdas.collector.names import Layout, snapshot_buckets
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS
from lambdas.collector.store.snapshot import day_buckets
from lambdas.collector.store.storage import ROW_GROUP_ROWS, BucketedParquetWriter, bucket_of, buckets_of

PATHS = [f"o-abc/r-ab12/ou-ab12-{n:04d}/{100000000000 + n}" for n in range(2_000)]


FILLER = {pa.string(): "x", pa.int32(): 0, pa.int64(): 0, pa.bool_(): False}


def rows(paths: list[str], per_target: int = 3, policy: str | None = None) -> pa.Table:
    schema = ACCESS_DETAILS.arrow_schema
    base = {f.name: FILLER.get(f.type, datetime(2026, 12, 3, tzinfo=UTC)) for f in schema}
    values = [
        {**base, "target_path": p, "policy_id": policy, "service_namespace": f"s{i}"}
        for p in paths
        for i in range(per_target)
    ]
    return pa.Table.from_pylist(values, schema=ACCESS_DETAILS.arrow_schema)


def test_a_targets_bucket_is_a_stable_hash_of_its_path_and_policy() -> None:
    assert bucket_of(PATHS[0], None, 8) == bucket_of(PATHS[0], None, 8)
    assert bucket_of(PATHS[0], None, 8) == bucket_of(PATHS[0], "", 8)  # no policy, however spelt
    # Pinned: blake2b, not Python's per-process string hash. A change here would move targets between
    # the files of a day written before it, and a rerun that day would show them twice.
    assert [bucket_of(p, None, 8) for p in PATHS[:6]] == [2, 0, 1, 6, 7, 4]
    spread = Counter(bucket_of(p, None, 8) for p in PATHS)
    assert set(spread) == set(range(8))
    assert max(spread.values()) < 1.25 * len(PATHS) / 8  # even enough for files of similar size
    with_policy = [bucket_of(p, "p-abcd1234", 8) for p in PATHS[:50]]
    assert with_policy != [bucket_of(p, None, 8) for p in PATHS[:50]]


def test_buckets_of_a_table_are_each_rows_targets_bucket() -> None:
    table = rows(PATHS[:300], per_target=2, policy="p-abcd1234")
    expected = [bucket_of(p, "p-abcd1234", 7) for p in table["target_path"].to_pylist()]
    assert buckets_of(table, 7).to_pylist() == expected


def test_the_writer_puts_every_row_in_its_targets_file_and_writes_every_file(tmp_path: Path) -> None:
    writer = BucketedParquetWriter(ACCESS_DETAILS, 5, tmp_path)
    writer.write(rows(PATHS[:40]))
    writer.write(rows(PATHS[40:41], per_target=0))  # an empty table changes nothing
    writer.write(rows(PATHS[40:100]))
    files = writer.close()
    assert len(files) == 5
    assert writer.rows == 300
    seen: Counter[str] = Counter()
    for n, path in enumerate(files):
        table = pq.read_table(path)
        assert table.schema.equals(ACCESS_DETAILS.arrow_schema)
        assert {bucket_of(p, None, 5) for p in table["target_path"].to_pylist()} <= {n}
        seen.update(table["target_path"].to_pylist())
    assert seen == dict.fromkeys(PATHS[:100], 3)


def test_a_bucket_without_rows_still_gets_a_file_with_the_schema(tmp_path: Path) -> None:
    writer = BucketedParquetWriter(REPORT_JOBS, 1, tmp_path)
    [path] = writer.close()
    table = pq.read_table(path)
    assert table.num_rows == 0
    assert table.schema.equals(REPORT_JOBS.arrow_schema)


def test_rows_are_grouped_into_row_groups_not_written_one_small_group_per_table(tmp_path: Path) -> None:
    writer = BucketedParquetWriter(ACCESS_DETAILS, 1, tmp_path)
    for start in range(0, 1_000, 10):
        writer.write(rows(PATHS[start : start + 10]))
    [path] = writer.close()
    metadata = pq.ParquetFile(path).metadata
    assert metadata.num_rows == 3_000
    assert ROW_GROUP_ROWS > 3_000
    assert metadata.num_row_groups == 1


def test_a_day_keeps_the_number_of_files_its_first_run_chose() -> None:
    layout = Layout("data/")
    keys = [layout.snapshot_file(ACCESS_DETAILS, "2026-12-03", n, 3) for n in range(3)]
    assert keys[1] == "data/access_details/dt=2026-12-03/part-00001-of-00003.parquet"
    assert [snapshot_buckets(k) for k in keys] == [3, 3, 3]
    assert day_buckets(keys, rows=50_000_000, rows_per_file=1_000) == 3  # grown since: still 3
    # a new day: enough files for rows_per_file rows each; files of earlier versions are not counted
    legacy = ["data/access_details/dt=2026-12-03/run-1-00000.parquet"]
    assert snapshot_buckets(legacy[0]) is None
    assert day_buckets(legacy, rows=4_000_001, rows_per_file=4_000_000) == 2
    assert day_buckets([], rows=0, rows_per_file=4_000_000) == 1


@pytest.mark.parametrize("key", ["x/part-00001-of-00003.parquet.tmp", "x/part-1-of-3.parquet", "x/other.parquet"])
def test_only_snapshot_file_keys_name_a_number_of_files(key: str) -> None:
    assert snapshot_buckets(key) is None
