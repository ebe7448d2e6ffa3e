"""Fakes of IAM's two report calls and of S3 on a clock that moves only when slept on: the stages'
logic, tested without AWS or the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from lambdas.collector.collect.pacing import Budget, Pacer
from lambdas.collector.models import Polling, RunContext, Target, TargetType
from tests.helpers import budget, limits

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_s3 import S3Client

ORG = "o-a1b2c3d4e5"
START = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def run_context(count: int, polling: Polling, batches: int = 1) -> RunContext:
    """The run of `count` account targets in `batches` batches, as discover would describe it."""
    return RunContext(
        run_id="run-1",
        dt="2026-11-24",
        collected_at=START,
        organization_id=ORG,
        bucket="collector-data",
        manifest_key="runs/run-1/manifest.json",
        targets=count,
        batches=batches,
        polling=polling,
    )


def targets(count: int) -> list[Target]:
    root = f"{ORG}/r-ab12"
    return [
        Target(path=f"{root}/{n:012d}", type=TargetType.ACCOUNT, id=f"{n:012d}", name=None) for n in range(1, count + 1)
    ]


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

    def budget(self, rate: float | None, jobs: int = 10_000) -> Budget:
        """Paced at `rate`, IAM having admitted `jobs` at once (and no more is tried)."""
        shared = limits(jobs, ceiling=jobs, rate=rate, clock=self.now)
        return budget(pacer=Pacer(rate, self.monotonic, self.sleep), clock=self.now, sleep=self.sleep, shared=shared)


class FakeIam:
    """IAM's two report calls on a clock: each job completes `latency` seconds after it was generated,
    at most `cap` jobs may be in progress at once (a test may change it), and with a `rate`, calls
    closer together than `1 / rate` seconds are throttled."""

    def __init__(self, clock: FakeClock, latency: float, cap: int = 1000, rate: float | None = None) -> None:
        self.clock, self.latency, self.cap, self.rate = clock, latency, cap, rate
        self.created: dict[str, datetime] = {}
        self.calls: list[tuple[str, str]] = []
        self.in_progress_peak = 0
        self._last_call: datetime | None = None

    def _throttle(self, call: str) -> None:
        """With a `rate`, a call sooner than `1 / rate` after the last one answered is throttled."""
        now = self.clock.now()
        if self.rate and self._last_call is not None and (now - self._last_call).total_seconds() < 1 / self.rate:
            self.calls.append(("throttled", call))
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, call)
        self._last_call = now

    def _running(self) -> int:
        now = self.clock.now()
        return sum(now < created + timedelta(seconds=self.latency) for created in self.created.values())

    def generate_organizations_access_report(self, EntityPath: str) -> dict[str, Any]:
        self._throttle("generate")
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
        self._throttle("get")
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
