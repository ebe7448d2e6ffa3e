"""generate, poll and fetch: a batch's report jobs from start to last page.

A batch's state travels through the state machine as `BatchState`: only its unfinished jobs, with
job ids, attempt counts and markers. Everything read from IAM is written to S3 by the stage that
read it, as two Parquet parts per invocation: access rows and the records of jobs that finished.

- generate starts jobs. `ReportGenerationLimitExceeded` (and throttling or IAM errors that
  outlasted the retries) stop starting for this invocation: the rest stay NOT_STARTED, and poll
  tries them again. Other IAM errors fail that target only.
- poll starts what is still not started, then reads each job in progress with MaxItems=1000.
  COMPLETED already carries the first page, which is written at once; IsTruncated hands the job
  to fetch with its marker. After `max_attempts` polls a job is recorded TIMED_OUT (or
  NOT_STARTED if IAM never admitted it): nothing is dropped.
- fetch follows markers until IsTruncated is false or the invocation's time runs short.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.collector.models import BatchState, Job, JobStatus, RunContext
from lambdas.collector.normalize import ColumnBuffer, JobContext, add_row, as_utc
from lambdas.collector.schema import ACCESS_DETAILS, REPORT_JOBS
from lambdas.collector.storage import Layout, put_table

MAX_ITEMS = 1000
# IAM answers that say "not now" rather than "never": the job stays pending for a later attempt.
TRY_LATER = frozenset({"ReportGenerationLimitExceeded", "Throttling", "ServiceFailure", "ServiceUnavailable"})
# A fetch buffer is written out when it reaches this many rows, so memory stays flat for big reports.
FLUSH_ROWS = 50_000


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


class _Stage:
    """The shared machinery of one invocation: IAM calls counted, rows and records buffered."""

    def __init__(self, state: BatchState, iam: Any, s3: Any, layout: Layout, name: str) -> None:
        self.state, self.iam, self.s3, self.layout, self.name = state, iam, s3, layout, name
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
        started = {"status": JobStatus.IN_PROGRESS, "job_id": response["JobId"], "polls": 0}
        return job.model_copy(update=started), False

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
        added = self.rows.add_access_details(self.context(job), response.get("AccessDetails", []))
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
            self._flushes += 1
            suffix = "" if self._flushes == 1 else f"-{self._flushes:03d}"
            self._put(self.rows, ACCESS_DETAILS, suffix)
            self.rows = ColumnBuffer(ACCESS_DETAILS)

    def close(self, jobs: list[Job], polls: int) -> StageResult:
        self.flush_rows()
        if len(self.records):
            self._put(self.records, REPORT_JOBS, "")
        finished = sum(self.result.finished.values())
        self.result.state = self.state.model_copy(
            update={
                "round": self.round,
                "polls": polls,
                "jobs": [job for job in jobs if job.status in IN_FLIGHT],
                "finished": self.state.finished + finished,
                "wait_seconds": self.run.polling.wait_after(polls),
            }
        )
        return self.result

    def _put(self, buffer: ColumnBuffer, dataset: Any, suffix: str) -> None:
        key = self.layout.part(self.run.run_id, dataset, self.state.batch, self.name, self.round)
        key = key.replace(".parquet", f"{suffix}.parquet")
        put_table(self.s3, self.run.bucket, key, buffer.to_table())
        self.result.parts.append(key)


IN_FLIGHT = frozenset({JobStatus.NOT_STARTED, JobStatus.IN_PROGRESS, JobStatus.TRUNCATED})


def start_batch(state: BatchState, iam: Any, s3: Any, layout: Layout) -> StageResult:
    stage = _Stage(state, iam, s3, layout, "generate")
    return stage.close(_start(stage, state.jobs), polls=0)


def _start(stage: _Stage, jobs: list[Job]) -> list[Job]:
    """Generate what is not started, until IAM says "not now"; every job left waiting counts an attempt."""
    out: list[Job] = []
    blocked = False
    for job in jobs:
        if job.status is JobStatus.NOT_STARTED and not blocked:
            started, later = stage.generate(job)
            if started.status is JobStatus.NOT_STARTED and not later:
                continue  # refused for good: generate() recorded it FAILED
            blocked, job = later, started
        if job.status is JobStatus.NOT_STARTED:
            job = job.model_copy(update={"polls": job.polls + 1})
        out.append(job)
    return out


def poll_batch(state: BatchState, iam: Any, s3: Any, layout: Layout) -> StageResult:
    stage = _Stage(state, iam, s3, layout, "poll")
    # Jobs started by this very invocation are not read back at once: they cannot be done yet.
    waiting = {job.job_id for job in state.jobs if job.status is JobStatus.IN_PROGRESS}
    limit = state.run.polling.max_attempts
    out: list[Job] = []
    blocked = False
    for job in _start(stage, state.jobs):
        if job.status is JobStatus.IN_PROGRESS and job.job_id in waiting and not blocked:
            job, blocked = _poll(stage, job)
        if job.status in (JobStatus.NOT_STARTED, JobStatus.IN_PROGRESS) and job.polls >= limit:
            _give_up(stage, job)
            continue
        if job.status is JobStatus.COMPLETED:
            stage.finish(job, JobStatus.COMPLETED)
            continue
        if job.status is JobStatus.FAILED:
            continue
        out.append(job)
    return stage.close(out, polls=state.polls + 1)


def _poll(stage: _Stage, job: Job) -> tuple[Job, bool]:
    """One GetOrganizationsAccessReport; returns the job and whether IAM asked us to back off."""
    job, response, error = stage.call(job, "get_organizations_access_report", JobId=job.job_id, MaxItems=MAX_ITEMS)
    if error is not None:
        if stage.try_later(job, error):
            return job, True
        return job.model_copy(update={"status": JobStatus.FAILED}), False
    status = response["JobStatus"]
    if status == "IN_PROGRESS":
        return job.model_copy(update={"polls": job.polls + 1}), False
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


def fetch_batch(
    state: BatchState, iam: Any, s3: Any, layout: Layout, *, time_left_ms: Callable[[], int], margin_ms: int
) -> StageResult:
    stage = _Stage(state, iam, s3, layout, "fetch")
    out: list[Job] = []
    for job in state.jobs:
        while job.status is JobStatus.TRUNCATED and time_left_ms() > margin_ms:
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
