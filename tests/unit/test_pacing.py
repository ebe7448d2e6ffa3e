"""Sitting on IAM's floor: calls paced to the batch's share, equal batches, polls only when a job is due."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import ClientError

from lambdas.collector.collect.discover import batches
from lambdas.collector.collect.jobs import poll_batch, start_batch
from lambdas.collector.collect.pacing import Budget, Pacer
from lambdas.collector.models import BatchState, Job, JobStatus, RunContext, Target, TargetType
from lambdas.collector.settings import Pace
from tests.helpers import budget

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_s3 import S3Client

ORG = "o-a1b2c3d4e5"
START = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


class FakeTime:
    """A monotonic clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_pacer_spaces_calls_by_its_interval_and_never_sleeps_for_late_calls() -> None:
    time = FakeTime()
    pacer = Pacer(4.0, time.monotonic, time.sleep)
    for _ in range(5):
        pacer()
    assert time.sleeps == [0.25] * 4  # the first call goes at once
    time.now += 10  # a slow call: the next one is already late
    pacer()
    assert time.sleeps == [0.25] * 4
    assert pacer.slept == pytest.approx(1.0)


def test_an_unpaced_pacer_never_sleeps() -> None:
    time = FakeTime()
    pacer = Pacer(None, time.monotonic, time.sleep)
    for _ in range(100):
        pacer()
    assert time.sleeps == []


def _targets(count: int) -> list[Target]:
    root = f"{ORG}/r-ab12"
    return [
        Target(path=f"{root}/{n:012d}", type=TargetType.ACCOUNT, id=f"{n:012d}", name=None) for n in range(1, count + 1)
    ]


@pytest.mark.parametrize(
    ("count", "size", "lanes"),
    [(1, 100, 2), (5, 100, 2), (111, 100, 2), (10_111, 100, 2), (250, 250, 1), (1_000, 7, 3), (3, 1, 4)],
)
def test_batches_are_equal_fill_every_lane_and_keep_every_target_once_in_order(
    count: int, size: int, lanes: int
) -> None:
    targets = _targets(count)
    manifest = batches(targets, size, lanes)
    sizes = [len(batch.targets) for batch in manifest]
    assert [t for batch in manifest for t in batch.targets] == targets
    assert [batch.batch for batch in manifest] == list(range(len(manifest)))
    assert max(sizes) <= size
    assert max(sizes) - min(sizes) <= 1
    assert len(manifest) % lanes == 0 or len(manifest) == count  # fewer targets than lanes: one each
    assert len(manifest) < -(-count // size) + lanes  # no more batches than filling the lanes needs


def as_iam(fake: FakeIam) -> IAMClient:
    return cast("IAMClient", fake)  # answers the two report calls the stages make


def as_s3(fake: FakeS3) -> S3Client:
    return cast("S3Client", fake)  # takes the put_object calls the stages make


class FakeClock:
    """Time that passes only when someone sleeps: pacing and waits both move it."""

    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return (self.at - START).total_seconds()

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=max(0.0, seconds))

    def budget(self, rate: float | None) -> Budget:
        return budget(pacer=Pacer(rate, self.monotonic, self.sleep), clock=self.now, sleep=self.sleep)


class FakeIam:
    """IAM's two report calls on a clock: each job completes `latency` seconds after it was generated,
    and at most `cap` jobs may be in progress at once."""

    def __init__(self, clock: FakeClock, latency: float, cap: int = 1000) -> None:
        self.clock, self.latency, self.cap = clock, latency, cap
        self.created: dict[str, datetime] = {}
        self.calls: list[tuple[str, str]] = []
        self.in_progress_peak = 0

    def _running(self) -> int:
        now = self.clock.now()
        return sum(now < created + timedelta(seconds=self.latency) for created in self.created.values())

    def generate_organizations_access_report(self, EntityPath: str) -> dict[str, Any]:
        if self._running() >= self.cap:
            self.calls.append(("refused", EntityPath))
            error = {"Error": {"Code": "ReportGenerationLimitExceeded", "Message": "too many jobs"}}
            raise ClientError(error, "GenerateOrganizationsAccessReport")  # type: ignore[arg-type]
        job_id = f"{len(self.created):036d}"
        self.created[job_id] = self.clock.now()
        self.calls.append(("generate", job_id))
        self.in_progress_peak = max(self.in_progress_peak, self._running())
        return {"JobId": job_id}

    def get_organizations_access_report(self, JobId: str, MaxItems: int) -> dict[str, Any]:
        created = self.created[JobId]
        done = created + timedelta(seconds=self.latency)
        if self.clock.now() < done:
            self.calls.append(("in progress", JobId))
            return {"JobStatus": "IN_PROGRESS", "JobCreationDate": created}
        self.calls.append(("get", JobId))
        detail = {"ServiceName": "Amazon S3", "ServiceNamespace": "s3", "TotalAuthenticatedEntities": 0}
        return {
            "JobStatus": "COMPLETED",
            "JobCreationDate": created,
            "JobCompletionDate": done,
            "NumberOfServicesAccessible": 1,
            "NumberOfServicesNotAccessed": 1,
            "AccessDetails": [detail],
            "IsTruncated": False,
        }

    def count(self, kind: str) -> int:
        return sum(1 for call, _ in self.calls if call == kind)


class FakeS3:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def put_object(self, **request: Any) -> None:
        self.keys.append(request["Key"])


def _state(count: int, initial_wait: int, jobs_in_progress: int | None = None) -> BatchState:
    run = RunContext(
        run_id="run-1",
        dt="2026-11-24",
        collected_at=START,
        organization_id=ORG,
        bucket="collector-data",
        manifest_key="runs/run-1/manifest.json",
        targets=count,
        batches=1,
        polling=Pace(poll_initial_wait_seconds=initial_wait).polling,
        jobs_in_progress=jobs_in_progress,
    )
    return BatchState(run=run, batch=0, jobs=[Job(target=t) for t in _targets(count)])


def test_one_generate_invocation_starts_and_reads_a_whole_batch_without_a_wasted_poll() -> None:
    # Given reports that take 3 s, a first wait of 5 s and a share of 2 calls per second
    clock = FakeClock()
    iam, s3 = FakeIam(clock, latency=3), FakeS3()
    result = start_batch(_state(40, initial_wait=5, jobs_in_progress=8), as_iam(iam), as_s3(s3), clock.budget(2.0))
    # Then the batch is done in the one invocation: two calls per target, none answered IN_PROGRESS
    assert result.finished == {JobStatus.COMPLETED: 40}
    assert result.state.jobs == []
    assert (iam.count("generate"), iam.count("get"), iam.count("in progress")) == (40, 40, 0)
    assert result.state.latency_by_kind == {"account": 3}  # learned from IAM's dates, per kind of report
    # And the batch never had more than its share of IAM's job cap in progress
    assert iam.in_progress_peak <= 8
    # And the calls kept to the pace, 80 calls at 2 per second, the last job trailing by under its 3 s
    assert 39.5 <= clock.monotonic() < 39.5 + 3


def test_a_slow_job_backs_off_inside_the_invocation_then_goes_back_to_the_state_machine() -> None:
    clock = FakeClock()
    iam, s3 = FakeIam(clock, latency=1_000), FakeS3()
    result = start_batch(_state(1, initial_wait=5), as_iam(iam), as_s3(s3), clock.budget(None))
    # Polled when due (5 s), then each time it has run half as long again: at 7.5, 11.25, 16.9 and 25.3 s;
    # the next wait, 12.7 s, is over the inline wait (10 s): the Wait state's, in whole seconds
    assert iam.count("in progress") == 5
    assert (result.state.jobs[0].polls, result.state.wait_seconds) == (5, 13)
    clock.sleep(13)  # the Wait state
    again = poll_batch(result.state, as_iam(iam), as_s3(s3), clock.budget(None))
    assert iam.count("in progress") == 6  # at 38.3 s; next at 57.4 s
    assert (again.state.jobs[0].polls, again.state.wait_seconds) == (6, 20)


def test_a_full_job_cap_stops_starting_until_one_of_our_jobs_finishes() -> None:
    clock = FakeClock()
    iam, s3 = FakeIam(clock, latency=3, cap=4), FakeS3()  # IAM's cap is lower than the batch's share
    result = start_batch(_state(12, initial_wait=3, jobs_in_progress=10), as_iam(iam), as_s3(s3), clock.budget(4.0))
    assert result.finished == {JobStatus.COMPLETED: 12}
    assert iam.in_progress_peak <= 4
    # One refusal at most each time the cap fills; never two in a row without a read between
    kinds = [kind for kind, _ in iam.calls if kind != "in progress"]
    assert not any(a == b == "refused" for a, b in itertools.pairwise(kinds))
