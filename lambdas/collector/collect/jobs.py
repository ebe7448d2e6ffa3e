"""generate, poll and fetch: a batch's report jobs from start to last page.

A batch's state travels through the state machine as `BatchState`: only its unfinished jobs, with
job ids, attempt counts and markers. Everything read from IAM is written to S3 by the stage that
read it, as two Parquet parts per invocation: access rows and the records of jobs that finished.

- generate and poll do the same work, one paced IAM call at a time: start the next job while the
  batch is under its share of IAM's job cap, else read the oldest job that is *due*, else sleep in
  the invocation if a job comes due within `Polling.inline_wait_seconds` (cheaper than another
  round of transitions), else hand the batch back to the state machine, whose Wait lasts until the
  next job is due. A job is due once it has run as
  long as the slowest job of the batch took (IAM's own creation and completion dates; the
  configured first wait until one has completed), so a poll that IAM would answer IN_PROGRESS is
  rarely made; a job polled IN_PROGRESS backs off exponentially.
- COMPLETED already carries the first page (MaxItems=1000 > the ~445 services), which is written
  at once; IsTruncated hands the job to fetch with its marker. `ReportGenerationLimitExceeded`
  (and throttling that outlasted the client's retries) stop starting until one of our jobs
  finishes. After `max_attempts` polls a job is recorded TIMED_OUT (or NOT_STARTED if IAM never
  admitted it): nothing is dropped.
- fetch follows markers until IsTruncated is false.

Every IAM call is paced to the batch's share of the account's call rate (`Pacer`), and every
stage stops starting calls when its invocation's time runs short, handing the rest on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.collector.models import BatchState, Job, JobStatus, RunContext
from lambdas.collector.store.normalize import ColumnBuffer, JobContext, add_row, as_utc
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS
from lambdas.collector.store.storage import Layout, put_table

MAX_ITEMS = 1000
# IAM answers that say "not now" rather than "never": the job stays pending for a later attempt.
TRY_LATER = frozenset({"ReportGenerationLimitExceeded", "Throttling", "ServiceFailure", "ServiceUnavailable"})
# A fetch buffer is written out when it reaches this many rows, so memory stays flat for big reports.
FLUSH_ROWS = 10_000


class Pacer:
    """Spaces calls `1 / rate` seconds apart (no bursts), sleeping when they come early."""

    def __init__(
        self,
        rate: float | None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._monotonic, self._sleep = monotonic, sleep
        self._next = 0.0
        self.slept = 0.0

    def __call__(self) -> None:
        if not self.interval:
            return
        now = self._monotonic()
        if now < self._next:
            self._sleep(self._next - now)
            self.slept += self._next - now
            now = self._next
        self._next = now + self.interval


@dataclass(frozen=True)
class Budget:
    """What an invocation may spend: its call pace and the time it has left."""

    pacer: Pacer = field(default_factory=lambda: Pacer(None))
    time_left_ms: Callable[[], int] = lambda: 900_000
    margin_ms: int = 0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep  # waits for a job to come due (the clock must move)

    @property
    def out_of_time(self) -> bool:
        return self.time_left_ms() <= self.margin_ms


def error_code(error: ClientError | BotoCoreError) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__


def error_message(error: ClientError | BotoCoreError) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Message", ""))[:1000]
    return str(error)[:1000]


@dataclass
class StageResult:
    """What one invocation did; the handler turns it into metrics and logs."""

    state: BatchState
    started: int = 0
    finished: dict[JobStatus, int] = field(default_factory=dict)
    pages: int = 0
    rows: int = 0
    iam_calls: int = 0
    parts: list[str] = field(default_factory=list)
    # CPU time of this thread spent turning pages into columns and writing them as Parquet to S3.
    write_seconds: float = 0.0
    paced_seconds: float = 0.0  # slept to keep to the batch's share of the call rate


class _Stage:
    """The shared machinery of one invocation: IAM calls counted, rows and records buffered."""

    def __init__(self, state: BatchState, iam: Any, s3: Any, layout: Layout, name: str, *, budget: Budget) -> None:
        self.state, self.iam, self.s3, self.layout, self.name = state, iam, s3, layout, name
        self.budget = budget
        self.latency = state.latency_seconds
        self.round = state.round + 1
        self.rows = ColumnBuffer(ACCESS_DETAILS)
        self.records = ColumnBuffer(REPORT_JOBS)
        self.result = StageResult(state)
        self._flushes = 0

    @property
    def run(self) -> RunContext:
        return self.state.run

    def call(
        self, job: Job, operation: str, **params: Any
    ) -> tuple[Job, dict[str, Any], ClientError | BotoCoreError | None]:
        """One IAM call, counted for the job and the invocation whether it succeeds or fails."""
        job = job.model_copy(update={"iam_calls": job.iam_calls + 1})
        self.result.iam_calls += 1
        self.budget.pacer()
        try:
            return job, getattr(self.iam, operation)(**params), None
        except (ClientError, BotoCoreError) as error:
            return job, {}, error

    def try_later(self, job: Job, error: ClientError | BotoCoreError) -> bool:
        """True if IAM said "not now" (the job stays as it is); otherwise the job is recorded FAILED."""
        if isinstance(error, BotoCoreError) or error_code(error) in TRY_LATER:
            return True
        self.finish(job, JobStatus.FAILED, error_code(error), error_message(error))
        return False

    def generate(self, job: Job) -> tuple[Job, bool]:
        """Start `job`; returns the job and whether IAM said "not now"."""
        params: dict[str, Any] = {"EntityPath": job.target.path}
        if job.target.policy_id:
            params["OrganizationsPolicyId"] = job.target.policy_id
        job, response, error = self.call(job, "generate_organizations_access_report", **params)
        if error is not None:
            return job, self.try_later(job, error)
        self.result.started += 1
        # Attempts while not admitted do not count against the job's polls once it runs.
        started = {
            "status": JobStatus.IN_PROGRESS,
            "job_id": response["JobId"],
            "polls": 0,
            "started": self.budget.clock(),
        }
        return job.model_copy(update=started), False

    def learn(self, response: dict[str, Any]) -> None:
        """The batch's latency: the longest creation-to-completion time IAM reported."""
        created, completed = as_utc(response.get("JobCreationDate")), as_utc(response.get("JobCompletionDate"))
        if created is not None and completed is not None:
            took = max(0.0, (completed - created).total_seconds())
            self.latency = took if self.latency is None else max(self.latency, took)

    def learn_running(self, job: Job) -> None:
        """A job still running at its age: reports take longer than that; expect half as long again,
        so the younger jobs are not polled too early one after another."""
        if job.started is not None and not job.polls:
            age = (self.budget.clock() - job.started).total_seconds()
            self.latency = max(self.expected, 1.5 * age)

    @property
    def expected(self) -> float:
        """How long a job takes: the batch's slowest so far, else the configured first wait."""
        return self.latency if self.latency is not None else self.run.polling.initial_wait_seconds

    def due_in(self, job: Job) -> float:
        """Seconds until a job in progress is worth a poll (<= 0: now)."""
        now = self.budget.clock()
        if job.polls and job.checked is not None:  # polled IN_PROGRESS before: back off from then
            return self.run.polling.wait_after(job.polls - 1) - (now - job.checked).total_seconds()
        if job.started is None:
            return 0.0
        return self.expected - (now - job.started).total_seconds()

    def next_wait(self, jobs: list[Job]) -> int:
        """Whole seconds until the first pending job is due (0: poll at once)."""
        polling = self.run.polling
        waits = [self.due_in(job) for job in jobs if job.status is JobStatus.IN_PROGRESS]
        if not waits:  # only jobs IAM has not admitted yet: back off
            waits = [polling.wait_after(max(0, j.polls - 1)) for j in jobs if j.status is JobStatus.NOT_STARTED]
        return min(polling.max_wait_seconds, max(0, math.ceil(min(waits)))) if waits else 0

    def add_page(self, job: Job, response: dict[str, Any]) -> Job:
        """Write a COMPLETED page's rows; the job moves on to TRUNCATED (with the marker) or stays."""
        job = job.model_copy(
            update={
                "created": as_utc(response["JobCreationDate"]),
                "completed": as_utc(response.get("JobCompletionDate")),
                "accessible": response.get("NumberOfServicesAccessible", 0),
                "not_accessed": response.get("NumberOfServicesNotAccessed", 0),
            }
        )
        cpu = time.thread_time()
        added = self.rows.add_access_details(self.context(job), response.get("AccessDetails", []))
        self.result.write_seconds += time.thread_time() - cpu
        self.result.pages += 1
        self.result.rows += added
        truncated = bool(response.get("IsTruncated"))
        job = job.model_copy(
            update={
                "pages": job.pages + 1,
                "rows": job.rows + added,
                "status": JobStatus.TRUNCATED if truncated else JobStatus.COMPLETED,
                "marker": response.get("Marker") if truncated else None,
            }
        )
        if len(self.rows) >= FLUSH_ROWS:
            self.flush_rows()
        return job

    def context(self, job: Job) -> JobContext:
        return JobContext(
            run_id=self.run.run_id,
            collected_at=self.run.collected_at,
            organization_id=self.run.organization_id,
            target_path=job.target.path,
            target_type=job.target.type.value,
            target_id=job.target.id,
            target_name=job.target.name,
            policy_id=job.target.policy_id,
            job_id=job.job_id,
            job_creation_date=job.created,
            job_completion_date=job.completed,
            services_accessible=job.accessible or 0,
            services_not_accessed=job.not_accessed or 0,
        )

    def finish(self, job: Job, status: JobStatus, code: str | None = None, message: str | None = None) -> None:
        context = self.context(job).columns()
        context.update(
            job_status=status.value,
            services_accessible=job.accessible,
            services_not_accessed=job.not_accessed,
            rows_written=job.rows,
            pages=job.pages,
            iam_calls=job.iam_calls,
            error_code=code,
            error_message=message,
        )
        add_row(self.records, context)
        self.result.finished[status] = self.result.finished.get(status, 0) + 1

    def flush_rows(self) -> None:
        if len(self.rows):
            cpu = time.thread_time()
            self._flushes += 1
            suffix = "" if self._flushes == 1 else f"-{self._flushes:03d}"
            self._put(self.rows, ACCESS_DETAILS, suffix)
            self.rows = ColumnBuffer(ACCESS_DETAILS)
            self.result.write_seconds += time.thread_time() - cpu

    def close(self, jobs: list[Job], polls: int) -> StageResult:
        self.flush_rows()
        self.result.paced_seconds = self.budget.pacer.slept
        if len(self.records):
            self._put(self.records, REPORT_JOBS, "")
        finished = sum(self.result.finished.values())
        self.result.state = self.state.model_copy(
            update={
                "round": self.round,
                "polls": polls,
                "jobs": [job for job in jobs if job.status in IN_FLIGHT],
                "finished": self.state.finished + finished,
                "wait_seconds": self.next_wait(jobs),
                "latency_seconds": self.latency,
            }
        )
        return self.result

    def _put(self, buffer: ColumnBuffer, dataset: Any, suffix: str) -> None:
        key = self.layout.part(self.run.run_id, dataset, self.state.batch, self.name, self.round)
        key = key.replace(".parquet", f"{suffix}.parquet")
        put_table(self.s3, self.run.bucket, key, buffer.to_table())
        self.result.parts.append(key)


IN_FLIGHT = frozenset({JobStatus.NOT_STARTED, JobStatus.IN_PROGRESS, JobStatus.TRUNCATED})


def start_batch(state: BatchState, iam: Any, s3: Any, layout: Layout, budget: Budget | None = None) -> StageResult:
    """generate: start the batch's jobs, and read each as it comes due in between."""
    stage = _Stage(state, iam, s3, layout, "generate", budget=budget or Budget())
    return stage.close(_advance(stage, state.jobs), polls=0)


def poll_batch(state: BatchState, iam: Any, s3: Any, layout: Layout, budget: Budget | None = None) -> StageResult:
    """wait-and-poll: after a Wait, the same work: start what IAM has not admitted, read what is due."""
    stage = _Stage(state, iam, s3, layout, "poll", budget=budget or Budget())
    return stage.close(_advance(stage, state.jobs), polls=state.polls + 1)


def _advance(stage: _Stage, jobs: list[Job]) -> list[Job]:
    """One invocation's work on a batch, one paced IAM call at a time, in this order of preference:
    start the next job while the batch has fewer than its share of IAM's job cap in progress; else
    read the oldest job that is due; else, if a job comes due within the inline wait, sleep until it
    does. Starting first keeps the batch's last jobs from trailing its reads by a report's latency;
    the share keeps the account under IAM's cap, and a refusal all the same stops starting until
    one of our jobs finishes.

    Stops when nothing is left, when time runs short, when IAM said "not now" with none of our
    jobs running (the state machine's Wait backs off), or when the next job is far from due.
    Returns the batch's jobs still in flight; finished ones are recorded.
    """
    jobs = list(jobs)
    share = stage.run.jobs_in_progress
    capacity = True  # False after IAM refused a start, until one of our jobs finishes
    while jobs and not stage.budget.out_of_time:
        running = [i for i, job in enumerate(jobs) if job.status is JobStatus.IN_PROGRESS]
        waiting = next((i for i, job in enumerate(jobs) if job.status is JobStatus.NOT_STARTED), None)
        if waiting is not None and capacity and (share is None or len(running) < share):
            job, later = stage.generate(jobs[waiting])
            if job.status is JobStatus.NOT_STARTED and not later:
                del jobs[waiting]  # refused for good: generate() recorded it FAILED
                continue
            jobs[waiting] = job
            capacity = not later
            if later and not running:
                break  # nothing of ours to wait for: the state machine backs off
            continue
        due = next((i for i in running if stage.due_in(jobs[i]) <= 0), None)
        if due is not None:
            finished, later = _read(stage, jobs, due)
            if later:
                break  # throttled beyond the client's retries: back off through the state machine
            capacity = capacity or finished
            continue
        if not running or not _wait_inline(stage, min(stage.due_in(jobs[i]) for i in running)):
            break
    return _count_refusals(stage, jobs)


def _read(stage: _Stage, jobs: list[Job], index: int) -> tuple[bool, bool]:
    """Poll `jobs[index]`; a finished job is recorded and removed. Returns (finished, IAM said later)."""
    job, later = _poll(stage, jobs[index])
    if later:
        jobs[index] = job
        return False, True
    if job.status is JobStatus.IN_PROGRESS and job.polls >= stage.run.polling.max_attempts:
        _give_up(stage, job)
        del jobs[index]
        return True, False
    if job.status is JobStatus.COMPLETED:
        stage.finish(job, JobStatus.COMPLETED)
    if job.status in (JobStatus.COMPLETED, JobStatus.FAILED):
        del jobs[index]
        return True, False
    jobs[index] = job
    return job.status is JobStatus.TRUNCATED, False


def _wait_inline(stage: _Stage, seconds: float) -> bool:
    """Sleep until the next job is due if that is near and the invocation has the time."""
    budget = stage.budget
    if seconds > stage.run.polling.inline_wait_seconds or budget.time_left_ms() - seconds * 1000 <= budget.margin_ms:
        return False
    before = budget.clock()
    budget.sleep(seconds)
    return budget.clock() > before  # a clock that does not move with sleep: hand back rather than spin


def _count_refusals(stage: _Stage, jobs: list[Job]) -> list[Job]:
    """Jobs IAM has not admitted count an attempt per invocation; past the bound they are recorded."""
    out: list[Job] = []
    for job in jobs:
        if job.status is JobStatus.NOT_STARTED:
            job = job.model_copy(update={"polls": job.polls + 1})
            if job.polls >= stage.run.polling.max_attempts:
                _give_up(stage, job)
                continue
        out.append(job)
    return out


def _poll(stage: _Stage, job: Job) -> tuple[Job, bool]:
    """One GetOrganizationsAccessReport; returns the job and whether IAM asked us to back off."""
    job, response, error = stage.call(job, "get_organizations_access_report", JobId=job.job_id, MaxItems=MAX_ITEMS)
    if error is not None:
        if stage.try_later(job, error):
            return job, True
        return job.model_copy(update={"status": JobStatus.FAILED}), False
    status = response["JobStatus"]
    if status == "IN_PROGRESS":
        stage.learn_running(job)
        return job.model_copy(update={"polls": job.polls + 1, "checked": stage.budget.clock()}), False
    stage.learn(response)
    if status == "FAILED":
        details = response.get("ErrorDetails") or {}
        job = job.model_copy(
            update={
                "created": as_utc(response.get("JobCreationDate")),
                "completed": as_utc(response.get("JobCompletionDate")),
            }
        )
        stage.finish(job, JobStatus.FAILED, details.get("Code", "Unknown"), details.get("Message"))
        return job.model_copy(update={"status": JobStatus.FAILED}), False
    return stage.add_page(job, response), False


def _give_up(stage: _Stage, job: Job) -> None:
    if job.status is JobStatus.NOT_STARTED:
        stage.finish(job, JobStatus.NOT_STARTED, "NotStarted", f"IAM did not admit the job in {job.polls} attempts")
    else:
        stage.finish(job, JobStatus.TIMED_OUT, "TimedOut", f"still IN_PROGRESS after {job.polls} polls")


def fetch_batch(state: BatchState, iam: Any, s3: Any, layout: Layout, budget: Budget | None = None) -> StageResult:
    stage = _Stage(state, iam, s3, layout, "fetch", budget=budget or Budget())
    out: list[Job] = []
    for job in state.jobs:
        while job.status is JobStatus.TRUNCATED and not stage.budget.out_of_time:
            job, response, error = stage.call(
                job, "get_organizations_access_report", JobId=job.job_id, MaxItems=MAX_ITEMS, Marker=job.marker
            )
            if error is not None:
                if not stage.try_later(job, error):
                    job = job.model_copy(update={"status": JobStatus.FAILED, "marker": None})
                break  # on "not now" the marker is kept and the state machine loops back to fetch
            job = stage.add_page(job, response)
        if job.status is JobStatus.COMPLETED:
            stage.finish(job, JobStatus.COMPLETED)
        elif job.status is not JobStatus.FAILED:
            out.append(job)
    return stage.close(out, polls=state.polls)
