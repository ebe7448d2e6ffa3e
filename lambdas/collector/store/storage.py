"""Parquet and JSON in and out of S3 (where each object lives: `lambdas.collector.names.Layout`)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
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


class RollingParquetWriter:
    """Writes a stream of tables as files of at most `rows_per_file` rows, one upload per file."""

    def __init__(
        self, s3: S3Client, bucket: str, dataset: Dataset, key_for: Callable[[int], str], rows_per_file: int
    ) -> None:
        self.s3, self.bucket, self.dataset = s3, bucket, dataset
        self.key_for = key_for  # file number → key
        self.rows_per_file = rows_per_file
        self.keys: list[str] = []
        self.rows = 0
        self._sink: io.BytesIO | None = None
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_file = 0

    def write(self, table: pa.Table) -> None:
        offset = 0
        while offset < table.num_rows:
            if self._writer is None:
                self._open()
            room = self.rows_per_file - self._rows_in_file
            chunk = table.slice(offset, room)
            assert self._writer is not None
            self._writer.write_table(chunk, row_group_size=ROW_GROUP_ROWS)
            self._rows_in_file += chunk.num_rows
            self.rows += chunk.num_rows
            offset += chunk.num_rows
            if self._rows_in_file >= self.rows_per_file:
                self._close()

    def close(self) -> list[str]:
        if self._writer is None and not self.keys:
            self._open()  # an empty dataset still gets one (empty) file with the schema
        self._close()
        return self.keys

    def _open(self) -> None:
        self._sink = io.BytesIO()
        self._writer = pq.ParquetWriter(self._sink, self.dataset.arrow_schema, compression=COMPRESSION)
        self._rows_in_file = 0

    def _close(self) -> None:
        if self._writer is None or self._sink is None:
            return
        self._writer.close()
        key = self.key_for(len(self.keys))
        self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=self._sink.getvalue(), ContentType="application/vnd.apache.parquet"
        )
        self.keys.append(key)
        self._writer, self._sink = None, None


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
