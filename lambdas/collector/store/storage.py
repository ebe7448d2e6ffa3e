"""Parquet and JSON in and out of S3 (where each object lives: `lambdas.collector.names.Layout`)."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lambdas.collector.names import Layout
from lambdas.collector.store.schema import Dataset

if TYPE_CHECKING:  # the boto3 stubs are a development dependency, never bundled
    from mypy_boto3_s3 import S3Client

COMPRESSION = "zstd"
ROW_GROUP_ROWS = 128 * 1024


def list_keys(s3: S3Client, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", ()))
    return sorted(keys)


def list_partitions(s3: S3Client, bucket: str, layout: Layout, dataset: Dataset) -> list[str]:
    """The `dt` values that have a partition, ascending."""
    prefix = layout.dataset(dataset)
    marker = f"{dataset.partition_key}="
    values: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        for common in page.get("CommonPrefixes", ()):
            segment = common["Prefix"].removeprefix(prefix).removesuffix("/")
            if segment.startswith(marker):
                values.append(segment.removeprefix(marker))
    return sorted(values)


def delete_keys(s3: S3Client, bucket: str, keys: list[str]) -> None:
    """Delete `keys`, a thousand per request (S3's limit for DeleteObjects)."""
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True})


def put_json(s3: S3Client, bucket: str, key: str, value: Any) -> None:
    body = json.dumps(value, separators=(",", ":")).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def get_json(s3: S3Client, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=COMPRESSION, row_group_size=ROW_GROUP_ROWS)
    return sink.getvalue()


def put_table(s3: S3Client, bucket: str, key: str, table: pa.Table) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=parquet_bytes(table), ContentType="application/vnd.apache.parquet")


def get_table(
    s3: S3Client,
    bucket: str,
    key: str,
    dataset: Dataset,
    columns: list[str] | None = None,
    *,
    filters: Any = None,
) -> pa.Table:
    """Read a Parquet object, cast to the dataset's schema (or the requested columns of it), keeping only
    the rows `filters` (pyarrow's DNF filters, or an expression) selects."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    table = pq.read_table(io.BytesIO(body), columns=columns, filters=filters)
    schema = dataset.arrow_schema
    wanted = pa.schema([schema.field(name) for name in columns]) if columns else schema
    for name, value in dataset.defaults.items():  # a file written before the column existed
        if name in wanted.names and name not in table.column_names:
            table = table.append_column(name, pa.array([value] * table.num_rows, schema.field(name).type))
    return table.select(wanted.names).cast(wanted)


def read_tables(
    s3: S3Client,
    bucket: str,
    keys: list[str],
    dataset: Dataset,
    columns: list[str] | None = None,
    *,
    filters: Any = None,
) -> Iterator[pa.Table]:
    for key in keys:
        yield get_table(s3, bucket, key, dataset, columns, filters=filters)


def bucket_of(target_path: str, policy_id: str | None, buckets: int) -> int:
    """The file (0 … `buckets` - 1) of a day's snapshot that holds a target's rows: a hash of the target's
    key, so every run puts the same target in the same file (see `lambdas.collector.store.snapshot`)."""
    digest = hashlib.blake2b(f"{target_path}\x1f{policy_id or ''}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


def buckets_of(table: pa.Table, buckets: int) -> pa.Array:
    """`bucket_of` for every row of a table with `target_path` and `policy_id` columns (hashed once per target)."""
    targets = pc.binary_join_element_wise(table["target_path"], pc.fill_null(table["policy_id"], ""), "\x1f")
    encoded = pc.dictionary_encode(targets).combine_chunks()
    keys = [key.split("\x1f", 1) for key in encoded.dictionary.to_pylist()]
    per_target = pa.array([bucket_of(path, policy, buckets) for path, policy in keys], pa.int32())
    return pc.take(per_target, encoded.indices)


class BucketedParquetWriter:
    """Spreads a stream of tables over `buckets` local Parquet files, each row into its target's bucket.

    Nothing goes to S3 here: the caller uploads `close()`'s files once every input has been read, so a
    failure while reading leaves the bucket as it was. Rows are grouped per bucket into row groups of
    `ROW_GROUP_ROWS`; a bucket with no row still gets a file with the schema.
    """

    def __init__(self, dataset: Dataset, buckets: int, directory: Path) -> None:
        self.dataset, self.buckets = dataset, buckets
        self.paths = [directory / f"{dataset.name}-{n:05d}.parquet" for n in range(buckets)]
        self.rows = 0
        self._writers = [pq.ParquetWriter(path, dataset.arrow_schema, compression=COMPRESSION) for path in self.paths]
        self._pending: list[list[pa.Table]] = [[] for _ in range(buckets)]
        self._pending_rows = [0] * buckets

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        self.rows += table.num_rows
        if self.buckets == 1:
            self._add(0, table)
            return
        ids = buckets_of(table, self.buckets)
        order = pc.sort_indices(ids)  # rows of a bucket together (a part holds few targets, often one)
        table, offset = table.take(order), 0
        for found in pc.value_counts(ids.take(order)).to_pylist():
            self._add(found["values"], table.slice(offset, found["counts"]))
            offset += found["counts"]

    def close(self) -> list[Path]:
        for bucket, writer in enumerate(self._writers):
            self._flush(bucket)
            writer.close()
        return self.paths

    def _add(self, bucket: int, table: pa.Table) -> None:
        self._pending[bucket].append(table)
        self._pending_rows[bucket] += table.num_rows
        if self._pending_rows[bucket] >= ROW_GROUP_ROWS:
            self._flush(bucket)

    def _flush(self, bucket: int) -> None:
        if self._pending[bucket]:
            table = pa.concat_tables(self._pending[bucket])
            self._writers[bucket].write_table(table, row_group_size=ROW_GROUP_ROWS)
            self._pending[bucket], self._pending_rows[bucket] = [], 0


def upload_file(s3: S3Client, bucket: str, key: str, path: Path) -> None:
    with path.open("rb") as body:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/vnd.apache.parquet")


def latest_before(s3: S3Client, bucket: str, layout: Layout, dataset: Dataset, dt: str) -> str | None:
    """The latest `dt` before `dt` with a partition of `dataset`, if any."""
    earlier = [value for value in list_partitions(s3, bucket, layout, dataset) if value < dt]
    return earlier[-1] if earlier else None


def read_snapshot(
    s3: S3Client, bucket: str, layout: Layout, dataset: Dataset, dt: str, *, columns: list[str], filters: Any = None
) -> pa.Table:
    """`columns` of a dataset's partition (the rows `filters` keeps); an empty table of those columns
    when it has no files."""
    keys = [key for key in list_keys(s3, bucket, layout.partition(dataset, dt)) if key.endswith(".parquet")]
    tables = list(read_tables(s3, bucket, keys, dataset, columns, filters=filters))
    if not tables:
        return pa.schema([dataset.arrow_schema.field(name) for name in columns]).empty_table()
    return pa.concat_tables(tables)
