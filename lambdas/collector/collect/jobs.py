"""generate, poll and fetch: a batch's report jobs from start to last page.

A batch's state travels through the state machine as `BatchState`: only its unfinished jobs, with
job ids, counts and markers. Everything read from IAM is written to S3 by the stage that read it
(`PartWriter`): access rows and the records of jobs that finished, a part at a time, each followed by
the invocation's checkpoint (the batch as its parts hold it; a job id too, as soon as IAM gives it).
A retry of an invocation that was killed resumes from that checkpoint (`store.parts.resume`): what
its parts hold is not read again, and a job it started is not started again.

- generate and poll do the same work, one paced IAM call at a time: start the next job while the
  learned limits shared by every lane grant one (`SharedLimits`: the job cap IAM has admitted, and
  a probe beyond it now and then), else read the oldest job that is *due* (`Latency`),
  else sleep in the invocation if a job comes due within the run's inline wait (cheaper than
  another round of transitions), else hand the batch back to the state machine, whose Wait lasts
  until the next job is due.
- COMPLETED already carries the first page (MaxItems=1000 > the ~455 services), which is written
  at once; a truncated page hands the job to fetch with its marker. IAM's "not now"
  (`ReportGenerationLimitExceeded`, throttling that outlasted the client's retries) stops starting
  until one of our jobs finishes. After `max_attempts` polls a job is recorded TIMED_OUT, after
  `max_attempts` rounds unadmitted NOT_STARTED; once the run's time budget is spent (its
  `deadline`) no job is started and those left are recorded DEFERRED, the next run's first work:
  nothing is dropped.
- fetch follows markers until the last page.

Every stage stops starting calls when its invocation's time runs short, handing the rest on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from lambdas.collector.collect.latency import Latency
from lambdas.collector.collect.limits import Grant, SharedLimits
from lambdas.collector.collect.pacing import Budget
from lambdas.collector.collect.report_api import (
    Completed,
    Failed,
    NotNow,
    Rejected,
    ReportApi,
    Running,
    Started,
    StartOutcome,
)
from lambdas.collector.models import BatchState, Job, JobStatus, RunContext
from lambdas.collector.store.normalize import JobContext
from lambdas.collector.store.parts import Checkpoint, Parts, PartWriter

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_s3 import S3Client

SLOT_WAIT_SECONDS = 1.0
IN_FLIGHT = frozenset({JobStatus.NOT_STARTED, JobStatus.IN_PROGRESS, JobStatus.TRUNCATED})


@dataclass
class StageResult:
    """What one invocation did; the handler turns it into metrics and logs."""

    state: BatchState
    started: int = 0
    refused: int = 0  # starts IAM did not admit (its job cap)
    finished: dict[JobStatus, int] = field(default_factory=dict)
    pages: int = 0
    rows: int = 0
    iam_calls: int = 0
    parts: list[str] = field(default_factory=list)
    write_seconds: float = 0.0  # CPU time spent turning pages into columns and writing Parquet
    paced_seconds: float = 0.0  # slept to keep to the batch's share of the call rate
    resumed: int | None = None  # a retry: the parts an earlier, killed attempt had written (its checkpoint)
    replayed: bool = False  # a retry of an invocation that had ended: its output, answered again


class Invocation:
    """One stage invocation on a batch: its IAM calls, latency, output and result. With a `checkpoint`
    (a retry of an attempt that was killed), it goes on from the batch the checkpoint holds."""

    def __init__(
        self,
        state: BatchState,
        iam: IAMClient,
        s3: S3Client,
        stage: str,
        budget: Budget,
        *,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        where = Parts.of(state, stage)
        state = checkpoint.state if checkpoint else state
        self.state, self.budget, self.limits = state, budget, budget.limits
        self.api = ReportApi(iam, budget.pacer, budget.limits)
        self.latency = Latency(state.latency_by_kind, state.run.polling, budget.clock, state.latency_samples)
        self.latency.seed(budget.limits.latency, budget.limits.slowest)
        self.parts = PartWriter(s3, where, checkpoint.parts if checkpoint else 0)
        self.result = StageResult(state, resumed=checkpoint.parts if checkpoint else None)
        self.written = state  # the batch as the parts written so far hold it (what a retry resumes from)

    @property
    def run(self) -> RunContext:
        return self.state.run

    @property
    def past_deadline(self) -> bool:
        """The run's time budget is spent: start nothing more."""
        return self.run.deadline is not None and self.budget.clock() >= self.run.deadline

    def start(self, job: Job, grant: Grant) -> tuple[Job, StartOutcome]:
        """Start a job the shared limits granted; a start rejected for good is recorded FAILED."""
        job, outcome = start_job(self.api, self.limits, job, grant, self.budget.clock)
        if isinstance(outcome, Started):
            self.result.started += 1
            self._save_started(job)
        elif isinstance(outcome, NotNow) and outcome.refused:
            self.result.refused += 1
        elif isinstance(outcome, Rejected):
            self.finish(job, JobStatus.FAILED, outcome.code, outcome.message)
        return job, outcome

    def read(self, job: Job) -> tuple[Job, Running | Completed | Failed | NotNow | Rejected]:
        """One read of a job: its status, or its next page (written at once)."""
        outcome = self.api.read(str(job.job_id), job.marker)
        if job.marker is None and isinstance(outcome, Completed | Failed | Rejected):
            # IAM's job is over: its latency is learned (a completed one's by every lane too), and its
            # slot is free (fetch reads on)
            learned = (
                self.latency.learn(job, outcome.created, outcome.completed) if not isinstance(outcome, Rejected) else {}
            )
            self.limits.release(job.target, learned if isinstance(outcome, Completed) else None)
        job = _called(job)
        if isinstance(outcome, Running):
            self.latency.learn_running(job)
            job = job.model_copy(update={"polls": job.polls + 1, "checked": self.budget.clock()})
        elif isinstance(outcome, Failed):
            job = job.model_copy(update={"created": outcome.created, "completed": outcome.completed})
            self.finish(job, JobStatus.FAILED, outcome.code, outcome.message)
        elif isinstance(outcome, Rejected):
            self.finish(job, JobStatus.FAILED, outcome.code, outcome.message)
        elif isinstance(outcome, Completed):
            job = self._add_page(job, outcome)
        return job, outcome

    def _add_page(self, job: Job, page: Completed) -> Job:
        if job.marker is None:  # the first page: the report's dates and counts, for every row
            dates = {"created": page.created, "completed": page.completed}
            counts = {"accessible": page.accessible, "not_accessed": page.not_accessed}
            job = job.model_copy(update={**dates, **counts})
        added = self.parts.add_page(self.context(job), page.details)
        self.result.pages += 1
        self.result.rows += added
        marker = page.marker
        status = JobStatus.TRUNCATED if marker else JobStatus.COMPLETED
        job = job.model_copy(
            update={"pages": job.pages + 1, "rows": job.rows + added, "status": status, "marker": marker}
        )
        if status is JobStatus.COMPLETED:
            self.finish(job, JobStatus.COMPLETED)
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
        """Record a job that will not be read again."""
        record = self.context(job).columns()
        record.update(
            job_status=status.value,
            services_accessible=job.accessible,
            services_not_accessed=job.not_accessed,
            rows_written=job.rows,
            pages=job.pages,
            iam_calls=job.iam_calls,
            error_code=code,
            error_message=message,
        )
        self.parts.add_record(record)
        self.result.finished[status] = self.result.finished.get(status, 0) + 1

    def give_up(self, job: Job) -> None:
        if job.status is JobStatus.NOT_STARTED:
            rounds = job.unadmitted_rounds
            self.finish(job, JobStatus.NOT_STARTED, "NotStarted", f"IAM did not admit the job in {rounds} rounds")
        else:
            self.limits.release(job.target)
            self.finish(job, JobStatus.TIMED_OUT, "TimedOut", f"still IN_PROGRESS after {job.polls} polls")

    def defer(self, job: Job) -> None:
        """Not started before the run's deadline: the next run's first work (finalize carries its data)."""
        deadline = self.run.deadline.isoformat() if self.run.deadline else "?"
        self.finish(job, JobStatus.DEFERRED, "RunBudgetSpent", f"not started before the run's deadline {deadline}")

    def _save_started(self, job: Job) -> None:
        """IAM gave a job its id: into the checkpoint at once, so a retry reads that job rather than
        starting another (the job has nothing in the parts yet)."""
        jobs = [job if held.target.key == job.target.key else held for held in self.written.jobs]
        self.written = self.written.model_copy(update={"jobs": jobs})
        self.parts.save(self.written)

    def checkpoint(self, jobs: list[Job]) -> None:
        """Called where `jobs` is the batch's every job in flight: once a part's worth of rows is
        buffered, write them, the records of the jobs finished since, and the checkpoint."""
        if self.parts.full:
            self.parts.flush()
            self.written = self._batch(jobs)
            self.parts.save(self.written)

    def _batch(self, jobs: list[Job], **update: Any) -> BatchState:
        """The batch with `jobs` in flight, every finished one counted, and what its jobs have taught."""
        return self.state.model_copy(
            update={
                "jobs": [job for job in jobs if job.status in IN_FLIGHT],
                "finished": self.state.finished + sum(self.result.finished.values()),
                "latency_by_kind": self.latency.by_kind,
                "latency_samples": self.latency.samples,
                **update,
            }
        )

    def close(self, jobs: list[Job], polls: int) -> StageResult:
        self.limits.idle()  # the batch goes back to the state machine: the other lanes share the rate
        output = self._batch(jobs, round=self.state.round + 1, polls=polls, wait_seconds=self.latency.next_wait(jobs))
        self.result.parts = self.parts.close(output)
        self.result.write_seconds = self.parts.cpu_seconds
        self.result.paced_seconds = self.budget.pacer.slept
        self.result.iam_calls = self.api.calls
        self.result.state = output
        return self.result


def _called(job: Job) -> Job:
    return job.model_copy(update={"iam_calls": job.iam_calls + 1})


def start_job(
    api: ReportApi, limits: SharedLimits, job: Job, grant: Grant, clock: Callable[[], datetime]
) -> tuple[Job, StartOutcome]:
    """Start a job the shared limits granted, and tell them what IAM answered: a probe admitted
    raises the level, a refusal is learned, any other answer frees the slot."""
    outcome = api.start(job.target)
    job = _called(job)
    if isinstance(outcome, Started):
        if grant.probe:
            limits.admitted(job.target)
        update = {"status": JobStatus.IN_PROGRESS, "job_id": outcome.job_id, "started": clock()}
        return job.model_copy(update=update), outcome
    if isinstance(outcome, NotNow) and outcome.refused:
        limits.refused(job.target)
    else:
        limits.release(job.target)
    return job, outcome


def start_batch(
    state: BatchState, iam: IAMClient, s3: S3Client, budget: Budget, checkpoint: Checkpoint | None = None
) -> StageResult:
    """generate: start the batch's jobs, and read each as it comes due in between."""
    invocation = Invocation(state, iam, s3, "generate", budget, checkpoint=checkpoint)
    return invocation.close(_advance(invocation, invocation.state.jobs), polls=0)


def poll_batch(
    state: BatchState, iam: IAMClient, s3: S3Client, budget: Budget, checkpoint: Checkpoint | None = None
) -> StageResult:
    """wait-and-poll: after a Wait, the same work: start what IAM has not admitted, read what is due."""
    invocation = Invocation(state, iam, s3, "poll", budget, checkpoint=checkpoint)
    return invocation.close(_advance(invocation, invocation.state.jobs), polls=invocation.state.polls + 1)


def _advance(invocation: Invocation, jobs: list[Job]) -> list[Job]:
    """One invocation's work on a batch, one paced IAM call at a time, in this order of preference:
    start the next job if the shared limits grant it (before the run's deadline); else read the
    oldest job that is due; else, if a job comes due within the inline wait, sleep until it does.
    Starting first keeps the batch's last jobs from trailing its reads by a report's latency; the
    grant keeps the account under the cap IAM has admitted, and a refusal or no grant stops starting
    until one of our jobs finishes.

    Stops when nothing is left, when time runs short, when IAM said "not now" with none of our
    jobs running (the state machine's Wait backs off), or when the next job is far from due.
    Returns the batch's jobs still in flight; finished ones are recorded.
    """
    jobs = list(jobs)
    latency = invocation.latency
    capacity = True  # False after no grant or IAM's "not now" to a start, until one of our jobs finishes
    slot_waits = 0  # waits in this invocation for a slot other lanes hold
    while jobs and not invocation.budget.out_of_time:
        invocation.checkpoint(jobs)
        running = [i for i, job in enumerate(jobs) if job.status is JobStatus.IN_PROGRESS]
        waiting = next((i for i, job in enumerate(jobs) if job.status is JobStatus.NOT_STARTED), None)
        if waiting is not None and capacity and not invocation.past_deadline:
            start = _start_next(invocation, jobs, waiting)
            capacity = start in (Start.STARTED, Start.GONE)
            if capacity or running:
                continue
            if start is Start.NO_GRANT and _wait_for_slot(invocation, slot_waits):
                slot_waits, capacity = slot_waits + 1, True
                continue
            break  # nothing of ours to wait for here: the state machine backs off
        due = next((i for i in running if latency.due_in(jobs[i]) <= 0), None)
        if due is not None:
            job, read = invocation.read(jobs[due])
            if isinstance(read, NotNow):
                break  # throttled beyond the client's retries: back off through the state machine
            if isinstance(read, Running) and job.polls < invocation.run.polling.max_attempts:
                jobs[due] = job
                continue
            if isinstance(read, Running):
                invocation.give_up(job)  # TIMED_OUT
                del jobs[due]
            elif job.status is JobStatus.TRUNCATED:
                jobs[due] = job  # completed: fetch reads its other pages
            else:
                del jobs[due]  # completed or failed, and recorded
            capacity = True  # one of our jobs finished: IAM has room again
            continue
        if not running or not _wait_inline(invocation, min(latency.due_in(jobs[i]) for i in running)):
            break
    return _count_unadmitted(invocation, jobs)


class Start(Enum):
    STARTED = "started"
    GONE = "gone"  # rejected for good: recorded FAILED, removed
    NO_GRANT = "no grant"  # as many of our jobs run as IAM has admitted, all lanes together
    NOT_NOW = "not now"  # IAM refused the start (its cap) or throttled it beyond the client's retries


def _start_next(invocation: Invocation, jobs: list[Job], waiting: int) -> Start:
    """Start `jobs[waiting]` if the shared limits grant it (in place; a job refused for good is
    recorded FAILED and removed)."""
    grant = invocation.limits.grant(jobs[waiting].target)
    if grant is None:
        return Start.NO_GRANT
    job, started = invocation.start(jobs[waiting], grant)
    if isinstance(started, Rejected):
        del jobs[waiting]
        return Start.GONE
    jobs[waiting] = job
    return Start.STARTED if isinstance(started, Started) else Start.NOT_NOW


def _wait_for_slot(invocation: Invocation, waits: int) -> bool:
    """A lane with nothing of its own running, whose start the shared limits did not grant, waits in
    the invocation for a slot the other lanes hold (their jobs take seconds; while the level admitted
    is rising, a slot opens with each probe IAM admits): a second, then twice as long each time, while
    the waits stay within the inline wait (after that the state machine backs off)."""
    seconds = SLOT_WAIT_SECONDS * 2**waits
    if SLOT_WAIT_SECONDS * (2 ** (waits + 1) - 1) > invocation.run.polling.inline_wait_seconds:
        return False
    return _wait_inline(invocation, seconds)


def _wait_inline(invocation: Invocation, seconds: float) -> bool:
    """Sleep until the next job is due if that is near and the invocation has the time."""
    budget = invocation.budget
    if seconds > invocation.run.polling.inline_wait_seconds or not budget.can_wait(seconds):
        return False
    before = budget.clock()
    invocation.limits.idle()  # the other lanes share the rate meanwhile
    budget.sleep(seconds)
    return budget.clock() > before  # a clock that does not move with sleep: hand back rather than spin


def _count_unadmitted(invocation: Invocation, jobs: list[Job]) -> list[Job]:
    """Jobs not started count a round per invocation in which IAM refused a start (waiting for a slot
    another lane of ours holds counts none); past the bound they are recorded NOT_STARTED, and past
    the run's deadline they are deferred to the next run."""
    out: list[Job] = []
    past_deadline = invocation.past_deadline
    refused = invocation.result.refused > 0
    for job in jobs:
        if job.status is JobStatus.NOT_STARTED and past_deadline:
            invocation.defer(job)
            continue
        if job.status is JobStatus.NOT_STARTED and refused:
            job = job.model_copy(update={"unadmitted_rounds": job.unadmitted_rounds + 1})
            if job.unadmitted_rounds >= invocation.run.polling.max_attempts:
                invocation.give_up(job)
                continue
        out.append(job)
    return out


def fetch_batch(
    state: BatchState, iam: IAMClient, s3: S3Client, budget: Budget, checkpoint: Checkpoint | None = None
) -> StageResult:
    """fetch: follow each truncated job's markers to its last page."""
    invocation = Invocation(state, iam, s3, "fetch", budget, checkpoint=checkpoint)
    jobs = list(invocation.state.jobs)
    for n, job in enumerate(jobs):
        while job.status is JobStatus.TRUNCATED and not budget.out_of_time:
            invocation.checkpoint(jobs)
            job, read = invocation.read(job)
            if isinstance(read, Rejected | Failed):
                job = job.model_copy(update={"status": JobStatus.FAILED, "marker": None})
            jobs[n] = job
            if isinstance(read, NotNow):
                break  # the marker is kept and the state machine loops back to fetch
    return invocation.close(jobs, polls=invocation.state.polls)
