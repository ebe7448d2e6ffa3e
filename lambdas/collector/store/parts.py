"""A stage invocation's output: access rows and job records, written as Parquet parts.

A part's key is fixed by the run, the batch, the stage and its round (see `names.Layout`), so a
retried invocation rewrites the same keys and never duplicates rows. Access rows are flushed every
`FLUSH_ROWS` rows, so memory stays flat for large reports; job records are written once, at close.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lambdas.collector.models import RunContext
from lambdas.collector.store.normalize import ColumnBuffer, JobContext
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS, Dataset
from lambdas.collector.store.storage import put_table

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FLUSH_ROWS = 10_000


class PartWriter:
    """Buffers one invocation's rows and records by columns and writes them as Parquet parts."""

    def __init__(self, s3: S3Client, run: RunContext, batch: int, stage: str, round_: int) -> None:
        self._s3, self._run, self._batch, self._stage, self._round = s3, run, batch, stage, round_
        self._rows = ColumnBuffer(ACCESS_DETAILS)
        self._records = ColumnBuffer(REPORT_JOBS)
        self._flushes = 0
        self.keys: list[str] = []
        # CPU time of this thread spent turning pages into columns and writing them to S3.
        self.cpu_seconds = 0.0

    def add_page(self, context: JobContext, details: Sequence[Mapping[str, Any]]) -> int:
        """One page's access details as rows; returns how many."""
        cpu = time.thread_time()
        added = self._rows.add_access_details(context, details)
        self.cpu_seconds += time.thread_time() - cpu
        if len(self._rows) >= FLUSH_ROWS:
            self.flush_rows()
        return added

    def add_record(self, values: Mapping[str, Any]) -> None:
        """One finished job's record (every column of `report_jobs`)."""
        self._records.add_row(values)

    def flush_rows(self) -> None:
        if len(self._rows):
            cpu = time.thread_time()
            self._flushes += 1
            self._put(self._rows, ACCESS_DETAILS, "" if self._flushes == 1 else f"-{self._flushes:03d}")
            self._rows = ColumnBuffer(ACCESS_DETAILS)
            self.cpu_seconds += time.thread_time() - cpu

    def close(self) -> list[str]:
        """Write what is buffered; returns the keys of every part this invocation wrote."""
        self.flush_rows()
        if len(self._records):
            self._put(self._records, REPORT_JOBS, "")
        return self.keys

    def _put(self, buffer: ColumnBuffer, dataset: Dataset, suffix: str) -> None:
        key = self._run.layout.part(self._run.run_id, dataset, self._batch, self._stage, self._round)
        key = key.replace(".parquet", f"{suffix}.parquet")
        put_table(self._s3, self._run.bucket, key, buffer.to_table())
        self.keys.append(key)
