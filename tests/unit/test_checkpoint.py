"""Checkpoints (issue 17, case 1): a stage invocation killed after writing some parts is retried with the
same input; the retry reads from IAM only what its parts do not hold, starts no job twice, and the run's
parts hold every row once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import pytest

from harness.clients import client
from lambdas.collector.collect.jobs import StageResult, fetch_batch, start_batch
from lambdas.collector.models import BatchState, Job, JobStatus
from lambdas.collector.settings import Pace
from lambdas.collector.store import parts
from lambdas.collector.store.parts import Checkpoint, Parts, PartWriter, resume
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS
from lambdas.collector.store.storage import get_table, list_keys, put_table
from tests.fakes import START, FakeClock, run_context, targets

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_s3 import S3Client

ROWS = 450  # services in each report
PAGE = 100  # rows per page: each report is 5 pages
FLUSH = 250  # rows per part here (FLUSH_ROWS is 10,000): a part every 3 pages


class Timedout(Exception):
    """Lambda's timeout: the invocation dies where it stands."""


class PagedIam:
    """IAM's two report calls: jobs done `latency` seconds after their start, reports of ROWS services in
    pages of PAGE; every Generate and every read (job id, marker) is recorded."""

    def __init__(self, clock: FakeClock, latency: float = 0.0) -> None:
        self.clock, self.latency = clock, latency
        self.generated: list[str] = []  # entity paths
        self.reads: list[tuple[str, str | None]] = []

    def generate_organizations_access_report(self, EntityPath: str) -> dict[str, Any]:
        self.generated.append(EntityPath)
        return {"JobId": f"{len(self.generated):036d}"}

    def get_organizations_access_report(self, JobId: str, MaxItems: int, Marker: str | None = None) -> dict[str, Any]:
        self.reads.append((JobId, Marker))
        created = START + timedelta(seconds=int(JobId))
        if self.clock.now() < created + timedelta(seconds=self.latency):
            return {"JobStatus": "IN_PROGRESS", "JobCreationDate": created, "IsTruncated": False}
        start = int(Marker or 0)
        end = min(start + PAGE, ROWS)
        return {
            "JobStatus": "COMPLETED",
            "JobCreationDate": created,
            "JobCompletionDate": created + timedelta(seconds=self.latency),
            "NumberOfServicesAccessible": ROWS,
            "NumberOfServicesNotAccessed": ROWS,
            "AccessDetails": [
                {"ServiceName": f"Service {n}", "ServiceNamespace": f"svc{n:03d}", "TotalAuthenticatedEntities": 0}
                for n in range(start, end)
            ],
            "IsTruncated": end < ROWS,
            **({"Marker": str(end)} if end < ROWS else {}),
        }


class DyingS3:
    """The data bucket as an invocation sees it: notes how many reads IAM had answered when each
    checkpoint was saved, and dies (Lambda's timeout) right after its `after`-th put of a key
    containing `kill_at`, or right before it with `before`."""

    def __init__(self, iam: PagedIam, kill_at: str = "", after: int = 0, *, before: bool = False) -> None:
        self._s3, self.iam = client("s3"), iam
        self.kill_at, self.after, self.before = kill_at, after, before
        self.puts: list[str] = []
        self.reads_at_checkpoint: list[int] = []
        self._matched = 0

    def put_object(self, **request: Any) -> Any:
        key = request["Key"]
        self._matched += bool(self.kill_at and self.kill_at in key)
        dying = self._matched == self.after and self.after > 0
        if dying and self.before:
            raise Timedout(f"killed before putting {key}")
        answer = self._s3.put_object(**request)
        self.puts.append(key)
        if "/checkpoints/" in key:
            self.reads_at_checkpoint.append(len(self.iam.reads))
        if dying:
            raise Timedout(f"killed after putting {key}")
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


@pytest.fixture
def bucket(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(parts, "FLUSH_ROWS", FLUSH)
    client("s3").create_bucket(Bucket="collector-data")
    return "collector-data"


def batch(count: int) -> BatchState:
    run = run_context(count, Pace(poll_initial_wait_seconds=1, poll_inline_wait_seconds=60).polling)
    return BatchState(run=run, batch=0, jobs=[Job(target=t) for t in targets(count)])


def stage(work: Any, state: BatchState, iam: PagedIam, s3: DyingS3, clock: FakeClock, **kw: Any) -> StageResult:
    result: StageResult = work(state, cast("IAMClient", iam), cast("S3Client", s3), clock.budget(None), **kw)
    return result


def retry(work: Any, state: BatchState, iam: PagedIam, clock: FakeClock, stage_name: str) -> StageResult:
    """What Step Functions does after a kill: the same input again; the handler resumes first."""
    s3 = DyingS3(iam)
    checkpoint = resume(cast("S3Client", s3), Parts.of(state, stage_name))
    return stage(work, state, iam, s3, clock, checkpoint=checkpoint)


def rows_by_job(bucket: str) -> Counter[tuple[str, str]]:
    """(job id, service) of every row of every part of the run."""
    s3 = client("s3")
    found: Counter[tuple[str, str]] = Counter()
    for key in list_keys(s3, bucket, "runs/run-1/parts/access_details/"):
        table = get_table(s3, bucket, key, ACCESS_DETAILS, ["job_id", "service_namespace"])
        found.update(zip(table["job_id"].to_pylist(), table["service_namespace"].to_pylist(), strict=True))
    return found


def records(bucket: str) -> list[dict[str, Any]]:
    s3 = client("s3")
    keys = list_keys(s3, bucket, "runs/run-1/parts/report_jobs/")
    return [row for key in keys for row in get_table(s3, bucket, key, REPORT_JOBS).to_pylist()]


def test_each_part_is_its_rows_then_the_records_of_the_jobs_finished_since_then_the_checkpoint(bucket: str) -> None:
    clock = FakeClock()
    iam = PagedIam(clock)
    generated = stage(start_batch, batch(6), iam, DyingS3(iam), clock).state
    s3 = DyingS3(iam)
    result = stage(fetch_batch, generated, iam, s3, clock)
    where = Parts.of(generated, "fetch")
    groups: list[list[str]] = [[]]
    for key in s3.puts:
        if key == where.checkpoint:
            groups.append([])
        else:
            groups[-1].append(key)
    *written, after_last = groups
    assert after_last == []  # the invocation ends with a checkpoint
    for number, keys in enumerate(written, start=1):
        assert keys[0] == where.part(ACCESS_DETAILS, number)
        assert keys[1:] in ([], [where.part(REPORT_JOBS, number)])
    assert len(written) == 8  # 2,400 rows, a part every 3 pages (the last at the end)
    assert sum(len(keys) == 2 for keys in written) == 6  # six jobs finished, in six of them
    # The last checkpoint is the invocation's output: a retry of it answers that again, reading nothing.
    checkpoint = resume(cast("S3Client", s3), where)
    assert checkpoint == Checkpoint(parts=8, state=result.state, done=True)
    assert result.state.jobs == []


def test_resume_deletes_the_parts_written_past_the_checkpoint_and_nothing_else(bucket: str) -> None:
    s3 = cast("S3Client", client("s3"))
    state = batch(1)
    where, other_round = Parts.of(state, "poll"), Parts.of(state.model_copy(update={"round": 9}), "poll")
    table = ACCESS_DETAILS.arrow_schema.empty_table()
    for dataset in (ACCESS_DETAILS, REPORT_JOBS):
        for number in (1, 2, 3):
            put_table(s3, bucket, where.part(dataset, number), table)
        put_table(s3, bucket, other_round.part(dataset, 2), table)
    writer = PartWriter(s3, where, parts=2)
    writer.save(state)  # the killed attempt's last checkpoint: after its second part, before the end of its third
    checkpoint = resume(s3, where)
    assert checkpoint == Checkpoint(parts=2, state=state)
    left = list_keys(s3, bucket, "runs/run-1/parts/")
    kept = {1: 1, 2: 1, None: 1}  # parts 1 and 2, and the other invocation's
    assert Counter(where.number(ACCESS_DETAILS, key) for key in left if "/access_details/" in key) == kept
    assert Counter(where.number(REPORT_JOBS, key) for key in left if "/report_jobs/" in key) == kept
    assert other_round.part(ACCESS_DETAILS, 2) in left  # another invocation's part
    # Killed before any checkpoint: none of its parts is kept.
    s3.delete_object(Bucket=bucket, Key=where.checkpoint)
    assert resume(s3, where) is None
    assert list_keys(s3, bucket, where.prefix(ACCESS_DETAILS)) == []


def test_a_fetch_killed_after_its_first_part_re_reads_only_the_pages_it_had_not_checkpointed(bucket: str) -> None:
    clock = FakeClock()
    iam = PagedIam(clock)
    generated = stage(start_batch, batch(6), iam, DyingS3(iam), clock).state  # first pages read: 5 to fetch
    # fetch dies right after putting its second rows part, before that part's records and checkpoint.
    killed = DyingS3(iam, kill_at="/access_details/", after=2)
    reads_before = len(iam.reads)
    with pytest.raises(Timedout):
        stage(fetch_batch, generated, iam, killed, clock)
    reads_killed = iam.reads[reads_before:]
    (checkpointed,) = killed.reads_at_checkpoint  # the checkpoint of its first part
    done = iam.reads[reads_before:checkpointed]  # pages in the first part
    lost = iam.reads[checkpointed:]  # pages in the second part, written but not checkpointed
    assert (len(reads_killed), len(done), len(lost)) == (6, 3, 3)

    result = retry(fetch_batch, generated, iam, clock, "fetch")
    reads_retry = iam.reads[reads_before + len(reads_killed) :]
    assert result.resumed == 1
    assert not set(reads_retry) & set(done)  # nothing the checkpoint holds is read again
    assert reads_retry[: len(lost)] == lost  # what was lost is read again, first
    assert len(reads_retry) == 6 * 4 - len(done)  # and the rest: 4 more pages of 6 reports in all
    assert result.state.jobs == []
    assert result.state.finished == 6
    rows = rows_by_job(bucket)
    assert set(rows.values()) == {1}  # no row twice
    assert Counter(job for job, _ in rows) == {f"{n:036d}": ROWS for n in range(1, 7)}  # none lost
    jobs = records(bucket)
    assert sorted(r["job_id"] for r in jobs) == [f"{n:036d}" for n in range(1, 7)]
    assert {(r["job_status"], r["rows_written"]) for r in jobs} == {("COMPLETED", ROWS)}


def test_a_generate_killed_after_starting_jobs_starts_none_of_them_again(bucket: str) -> None:
    clock = FakeClock()
    iam = PagedIam(clock, latency=5)  # every job started before the first is read
    state = batch(6)
    killed = DyingS3(iam, kill_at="/checkpoints/", after=3)  # after saving its third job id
    with pytest.raises(Timedout):
        stage(start_batch, state, iam, killed, clock)
    assert len(iam.generated) == 3
    assert iam.reads == []
    result = retry(start_batch, state, iam, clock, "generate")
    assert result.resumed == 0  # no part yet: the checkpoint holds job ids only
    assert sorted(iam.generated) == sorted(t.path for t in targets(6))  # each started once
    assert result.started == 3
    assert {job.status for job in result.state.jobs} == {JobStatus.TRUNCATED}
    assert sorted(job.job_id for job in result.state.jobs) == [f"{n:036d}" for n in range(1, 7)]  # type: ignore[type-var]


def test_a_job_started_after_the_last_checkpoint_is_started_again_and_only_that_one(bucket: str) -> None:
    # Killed between IAM's answer and the checkpoint's put: nothing holds that job id. IAM gives the same
    # caller the same job within 60 s (see the end-to-end test); this fake IAM does not.
    clock = FakeClock()
    iam = PagedIam(clock, latency=5)
    state = batch(3)
    killed = DyingS3(iam, kill_at="/checkpoints/", after=2, before=True)
    with pytest.raises(Timedout):
        stage(start_batch, state, iam, killed, clock)
    retry(start_batch, state, iam, clock, "generate")
    assert Counter(iam.generated) == {targets(3)[0].path: 1, targets(3)[1].path: 2, targets(3)[2].path: 1}
