"""A stage invocation's output: access rows and job records as Parquet parts, and the checkpoint a
retry of the invocation resumes from.

A part's key is fixed by the run, the batch, the stage, its round (see `names.Layout`) and its number
in the invocation: `{stage}-RRRR.parquet` first, then `{stage}-RRRR-NNN.parquet`. Rows are flushed
every `FLUSH_ROWS` rows, so memory stays flat for large reports. A flush writes the rows part, then,
under the same number, the records of the jobs finished since the last flush, then the invocation's
`Checkpoint`: the batch as the parts written so far hold it (the jobs still to read, with their job
ids and markers). The invocation also saves the checkpoint when it starts a job, so the job id
outlives a kill, and once more when it ends, with its output.

A retried invocation (same batch, stage and round: Step Functions retries a killed task with the same
input) starts from `resume`: the parts numbered past the checkpoint (written after it, by the attempt
that was killed) are deleted, since their rows will be read again, and the work goes on from the
batch the checkpoint holds, numbering its parts after the checkpoint's. Nothing written is read from
IAM again, and nothing is written twice. A retry of an invocation that had ended answers its output.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field

from lambdas.collector.models import BatchState, Model, RunContext
from lambdas.collector.store.normalize import ColumnBuffer, JobContext
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS, Dataset
from lambdas.collector.store.storage import delete_keys, get_json, list_keys, put_json, put_table

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FLUSH_ROWS = 10_000
PART_DATASETS = (ACCESS_DETAILS, REPORT_JOBS)
_NUMBER = re.compile(r"^(?:-(\d+))?\.parquet$")  # what follows `{stage}-RRRR` in a part's key


class Checkpoint(Model):
    """What a stage invocation has written: parts 1 … `parts`, which hold the batch up to `state`."""

    parts: int = Field(ge=0)
    # Mid-invocation, the batch as the parts hold it (its round and polls as the invocation received
    # them); once `done`, the invocation's output.
    state: BatchState
    done: bool = False


@dataclass(frozen=True)
class Parts:
    """Where one stage invocation writes: its parts and its checkpoint."""

    run: RunContext
    batch: int
    stage: str
    round: int

    @classmethod
    def of(cls, state: BatchState, stage: str) -> Parts:
        """The invocation of `stage` on `state`: it writes the round after the state's."""
        return cls(state.run, state.batch, stage, state.round + 1)

    def part(self, dataset: Dataset, number: int) -> str:
        key = self._first(dataset)
        return key if number == 1 else key.replace(".parquet", f"-{number:03d}.parquet")

    @property
    def checkpoint(self) -> str:
        return self.run.layout.checkpoint(self.run.run_id, self.batch, self.stage, self.round)

    def prefix(self, dataset: Dataset) -> str:
        """What every key of this invocation's parts of `dataset` starts with."""
        return self._first(dataset).removesuffix(".parquet")

    def number(self, dataset: Dataset, key: str) -> int | None:
        """The number of one of this invocation's parts (None: not one of them)."""
        prefix = self.prefix(dataset)
        found = _NUMBER.match(key.removeprefix(prefix)) if key.startswith(prefix) else None
        return int(found.group(1) or 1) if found else None

    def _first(self, dataset: Dataset) -> str:
        return self.run.layout.part(self.run.run_id, dataset, self.batch, self.stage, self.round)


def resume(s3: S3Client, where: Parts) -> Checkpoint | None:
    """The checkpoint an earlier attempt of this invocation left (None: this is the first, or it was
    killed before any), after deleting the parts it wrote past that checkpoint."""
    try:
        checkpoint: Checkpoint | None = Checkpoint.model_validate(get_json(s3, where.run.bucket, where.checkpoint))
    except s3.exceptions.NoSuchKey:
        checkpoint = None
    written = checkpoint.parts if checkpoint else 0
    later = [
        key
        for dataset in PART_DATASETS
        for key in list_keys(s3, where.run.bucket, where.prefix(dataset))
        if (number := where.number(dataset, key)) is not None and number > written
    ]
    delete_keys(s3, where.run.bucket, later)
    return checkpoint


class PartWriter:
    """Buffers one invocation's rows and records by columns and writes them as Parquet parts, with
    the checkpoint that says what they hold. `parts`: how many an earlier attempt already wrote."""

    def __init__(self, s3: S3Client, where: Parts, parts: int = 0) -> None:
        self._s3, self.where = s3, where
        self._rows = ColumnBuffer(ACCESS_DETAILS)
        self._records = ColumnBuffer(REPORT_JOBS)
        self.parts = parts
        self.keys: list[str] = []
        # CPU time of this thread spent turning pages into columns and writing them to S3.
        self.cpu_seconds = 0.0

    @property
    def full(self) -> bool:
        """Enough rows are buffered for a part."""
        return len(self._rows) >= FLUSH_ROWS

    def add_page(self, context: JobContext, details: Sequence[Mapping[str, Any]]) -> int:
        """One page's access details as rows; returns how many."""
        cpu = time.thread_time()
        added = self._rows.add_access_details(context, details)
        self.cpu_seconds += time.thread_time() - cpu
        return added

    def add_record(self, values: Mapping[str, Any]) -> None:
        """One finished job's record (every column of `report_jobs`)."""
        self._records.add_row(values)

    def flush(self) -> None:
        """Write what is buffered as the next part: the rows, then the records (the checkpoint follows)."""
        if not len(self._rows) and not len(self._records):
            return
        cpu = time.thread_time()
        self.parts += 1
        for buffer, dataset in ((self._rows, ACCESS_DETAILS), (self._records, REPORT_JOBS)):
            if len(buffer):
                key = self.where.part(dataset, self.parts)
                put_table(self._s3, self.where.run.bucket, key, buffer.to_table())
                self.keys.append(key)
        self._rows, self._records = ColumnBuffer(ACCESS_DETAILS), ColumnBuffer(REPORT_JOBS)
        self.cpu_seconds += time.thread_time() - cpu

    def save(self, state: BatchState, *, done: bool = False) -> None:
        """The checkpoint: the parts written so far hold the batch up to `state` (its output once `done`)."""
        checkpoint = Checkpoint(parts=self.parts, state=state, done=done)
        put_json(self._s3, self.where.run.bucket, self.where.checkpoint, checkpoint.model_dump(mode="json"))

    def close(self, output: BatchState) -> list[str]:
        """Write what is buffered and the checkpoint of the invocation's `output`; returns the keys of
        every part this attempt wrote."""
        self.flush()
        self.save(output, done=True)
        return self.keys
