"""What the collector's functions receive and return: the Step Functions payloads.

Every event is parsed into one of these models before any side effect, so a malformed event fails
with a pydantic `ValidationError` that names the field. Payloads carry keys, ids and counts; report
pages never travel through Step Functions (they go to S3 as Parquet parts).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from lambdas.collector.names import DATA_PREFIX, Layout

# Patterns from IAM's and Organizations' service models; a target is refused before IAM sees it.
ORGANIZATION_ID = r"^o-[0-9a-z]{10,32}$"
ROOT_ID = r"^r-[0-9a-z]{4,32}$"
OU_ID = r"^ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}$"
ACCOUNT_ID = r"^\d{12}$"
POLICY_ID = r"^p-[0-9a-zA-Z_]{8,128}$"
ENTITY_PATH = r"^o-[0-9a-z]{10,32}/r-[0-9a-z]{4,32}(/ou-[0-9a-z]{4,32}-[0-9a-z]{8,32})*(/\d{12})?$"
# Execution names become S3 key segments and session names: keep them to a safe alphabet.
RUN_ID = r"^[A-Za-z0-9_.-]{1,80}$"
TARGET_ID = f"{ROOT_ID[:-1]}|{OU_ID[1:-1]}|{ACCOUNT_ID[1:]}"
ROLE_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}$"
TABLE = r"^[A-Za-z0-9_.-]{3,255}$"
TOPIC_ARN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$"
STATE_MACHINE_ARN = r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$"
EXECUTION_ARN = r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[A-Za-z0-9_-]{1,80}:[A-Za-z0-9_.-]{1,80}$"
BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"


def normalize_target_id(value: str) -> str:
    """A root, OU or account id however it was written: bare, with a trailing '/' (as Organizations'
    `Path` fields end), or as a whole path. IAM fails a job whose path ends with '/', so none is kept."""
    return value.strip().rstrip("/").rsplit("/", 1)[-1]


OrganizationId = Annotated[str, StringConstraints(pattern=ORGANIZATION_ID)]
PolicyId = Annotated[str, StringConstraints(pattern=POLICY_ID)]
EntityPath = Annotated[str, StringConstraints(max_length=427, pattern=ENTITY_PATH)]
TargetId = Annotated[str, StringConstraints(pattern=TARGET_ID)]
RunId = Annotated[str, StringConstraints(pattern=RUN_ID)]
JobId = Annotated[str, StringConstraints(min_length=36, max_length=36)]
Marker = Annotated[str, StringConstraints(min_length=1, max_length=320)]
Date = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_aware_utc)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetType(StrEnum):
    ROOT = "ROOT"
    ORGANIZATIONAL_UNIT = "ORGANIZATIONAL_UNIT"
    ACCOUNT = "ACCOUNT"


class Scope(StrEnum):
    ALL = "all"
    ROOT = "root"
    OUS = "ous"
    ACCOUNTS = "accounts"

    @property
    def target_types(self) -> frozenset[TargetType]:
        return {
            Scope.ALL: frozenset(TargetType),
            Scope.ROOT: frozenset({TargetType.ROOT}),
            Scope.OUS: frozenset({TargetType.ORGANIZATIONAL_UNIT}),
            Scope.ACCOUNTS: frozenset({TargetType.ACCOUNT}),
        }[self]


class Target(Model):
    """One report to generate: an entity of the organization, optionally narrowed to one SCP."""

    path: EntityPath
    type: TargetType
    id: TargetId
    name: str | None = Field(default=None, max_length=128)
    policy_id: PolicyId | None = None
    # How long IAM took to make this target's latest report (discover, from history): when to read it first.
    expected_seconds: float | None = Field(default=None, ge=0, le=86_400)

    @model_validator(mode="after")
    def _path_ends_with_id(self) -> Target:
        if self.path.rsplit("/", 1)[-1] != self.id:
            raise ValueError(f"path {self.path!r} does not end with the target id {self.id!r}")
        kind = (
            TargetType.ROOT
            if re.match(ROOT_ID, self.id)
            else TargetType.ORGANIZATIONAL_UNIT
            if re.match(OU_ID, self.id)
            else TargetType.ACCOUNT
        )
        if kind is not self.type:
            raise ValueError(f"target id {self.id!r} is not of type {self.type}")
        return self

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.path, self.policy_id)


class Polling(Model):
    """How long to wait between polls of a batch, and how many polls before giving up: the run's
    `poll_*` settings (declared, with their bounds, in `lambdas.collector.settings.Pace`)."""

    initial_wait_seconds: int
    max_wait_seconds: int
    max_attempts: int
    # A job due within this is waited for inside the invocation (a few seconds of a paced Lambda
    # cost less than the Choice, Wait and Poll transitions of another round).
    inline_wait_seconds: int

    def wait_after(self, polls: int) -> int:
        """Exponential backoff (doubling per poll), capped."""
        return min(self.max_wait_seconds, self.initial_wait_seconds * (1 << min(polls, 16)))


class DiscoverEvent(Model):
    """The state machine passes the execution's name, start time and input, and its own and the
    execution's ARNs (one run at a time: `lambdas.collector.collect.one_run`). The input (`options`)
    is checked against `lambdas.collector.settings.RUN_OPTIONS` by discover, before any IAM call."""

    run_id: RunId
    started_at: UtcDatetime
    state_machine_arn: Annotated[str, StringConstraints(pattern=STATE_MACHINE_ARN)]
    execution_arn: Annotated[str, StringConstraints(pattern=EXECUTION_ARN)]
    options: dict[str, Any] = {}

    @model_validator(mode="after")
    def _an_execution_of_the_state_machine(self) -> DiscoverEvent:
        expected = f"{self.state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{self.run_id}"
        if self.execution_arn != expected:
            raise ValueError(
                f"execution_arn {self.execution_arn!r} is not execution {self.run_id!r} of the state machine"
            )
        return self


class RunInProgress(Model):
    """The earliest run of the state machine in progress when this one started: discover then answers
    `{"skipped": true, "run_in_progress": …}` (else `{"skipped": false, "run": …}`), before any
    Organizations or IAM call, and the state machine ends the run in `SkippedAnotherRunInProgress`."""

    execution_arn: Annotated[str, StringConstraints(pattern=EXECUTION_ARN)]
    started_at: UtcDatetime


class RunContext(Model):
    """What every later stage needs to know about the run; discover's result. Where the data lives
    (bucket and prefix) is decided once, by discover, and read from here by every later stage."""

    run_id: RunId
    dt: Date
    collected_at: UtcDatetime
    organization_id: OrganizationId
    bucket: Annotated[str, StringConstraints(pattern=BUCKET)]
    prefix: Annotated[str, StringConstraints(pattern=DATA_PREFIX)] = ""
    manifest_key: str = Field(min_length=1, max_length=1024)
    targets: int = Field(ge=1)
    batches: int = Field(ge=1)
    polling: Polling
    # The configured upper bounds of IAM's call rate (calls per second; None: unpaced) and of its job
    # cap; what IAM admits is learned at run time below them (`collect.limits`), shared by the lanes.
    max_calls_per_second: float | None = Field(default=None, gt=0, le=1000)
    max_jobs_in_progress: int = Field(default=1, ge=1, le=10_000)
    # Batches collected at once: each paces its calls to its share of the learned rate.
    lanes: int = Field(default=1, ge=1, le=1000)
    # The run's time budget ends here: no job is started after it (the rest is deferred to the next run).
    deadline: UtcDatetime | None = None
    # The role the run's report calls go through (discover's REPORT_ROLE_ARN): the alert names it in
    # the fix for a job its permissions failed. None: the alert says "the reporter role".
    report_role_arn: Annotated[str, StringConstraints(pattern=ROLE_ARN)] | None = None
    # The run's `account_refresh_days`: the alert reports a target whose data is older as stale. None: no cadence.
    stale_after_days: int | None = Field(default=None, ge=1)

    @property
    def layout(self) -> Layout:
        return Layout(self.prefix)


class JobStatus(StrEnum):
    # In flight (carried in the batch state)
    NOT_STARTED = "NOT_STARTED"  # also final, when generation was never admitted
    IN_PROGRESS = "IN_PROGRESS"
    TRUNCATED = "TRUNCATED"  # completed, more pages to read
    # Final (recorded in report_jobs)
    COMPLETED = "COMPLETED"
    INCOMPLETE = "INCOMPLETE"  # completed, but the rows do not add up to the report's counts
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    NOT_COLLECTED = "NOT_COLLECTED"  # in the manifest, but its batch never reported it
    DEFERRED = "DEFERRED"  # left to a later run by the collection plan, with no earlier report to carry


class Job(Model):
    """A target's report job while its batch is in flight."""

    target: Target
    status: JobStatus = JobStatus.NOT_STARTED
    job_id: JobId | None = None
    polls: int = Field(default=0, ge=0)  # reads that found it IN_PROGRESS
    unadmitted_rounds: int = Field(default=0, ge=0)  # invocations that ended with IAM not admitting it
    marker: Marker | None = None
    pages: int = Field(default=0, ge=0)
    rows: int = Field(default=0, ge=0)
    iam_calls: int = Field(default=0, ge=0)
    started: UtcDatetime | None = None  # when we generated it (our clock): when it becomes due
    checked: UtcDatetime | None = None  # when a poll last found it IN_PROGRESS
    created: UtcDatetime | None = None
    completed: UtcDatetime | None = None
    accessible: int | None = Field(default=None, ge=0)
    not_accessed: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Job:
        if self.status is not JobStatus.NOT_STARTED and self.job_id is None:
            raise ValueError(f"a {self.status} job needs its job_id")
        if (self.status is JobStatus.TRUNCATED) != (self.marker is not None):
            raise ValueError("a marker goes with, and only with, a TRUNCATED job")
        return self


class Batch(Model):
    """One item of the manifest: the targets one child execution of the Distributed Map collects, and
    those of its jobs discover already started (measuring IAM's job cap before deciding the lanes)."""

    batch: int = Field(ge=0)
    targets: list[Target] = Field(min_length=1)
    started: list[Job] = Field(default=[])

    @model_validator(mode="after")
    def _started_are_ours_and_in_progress(self) -> Batch:
        keys = {target.key for target in self.targets}
        for job in self.started:
            if job.status is not JobStatus.IN_PROGRESS or job.target.key not in keys:
                raise ValueError(f"started job {job.job_id} is not an IN_PROGRESS job of one of the batch's targets")
        return self

    def jobs(self) -> list[Job]:
        """The batch's jobs in its targets' order: those started, the rest not yet."""
        started = {job.target.key: job for job in self.started}
        return [started.get(target.key) or Job(target=target) for target in self.targets]


class GenerateEvent(Model):
    """A child execution's input, as the Distributed Map's ItemSelector builds it."""

    run: RunContext
    batch: Batch


_COUNTS = ("pending", "truncated")


class BatchState(Model):
    """A batch between stages: its unfinished jobs, and what the state machine's Choice and Wait read."""

    run: RunContext
    batch: int = Field(ge=0)
    round: int = Field(default=0, ge=0)  # stage invocations so far; names the S3 parts they write
    polls: int = Field(default=0, ge=0)
    jobs: list[Job] = []
    finished: int = Field(default=0, ge=0)
    wait_seconds: int = Field(default=0, ge=0)
    # The longest creation-to-completion time IAM reported per kind of report (`collect.latency.JobKind`).
    latency_by_kind: dict[str, Annotated[float, Field(ge=0)]] = {}
    # The latest creation-to-completion times per kind (`collect.latency.SAMPLES` at most): when to read first.
    latency_samples: dict[str, list[Annotated[float, Field(ge=0)]]] = {}

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in _COUNTS}
        return data

    @property
    def pending(self) -> int:
        return sum(job.status in (JobStatus.NOT_STARTED, JobStatus.IN_PROGRESS) for job in self.jobs)

    @property
    def truncated(self) -> int:
        return sum(job.status is JobStatus.TRUNCATED for job in self.jobs)

    def payload(self) -> dict[str, Any]:
        """The JSON the state machine receives, with the counts its Choice state reads."""
        return {
            **self.model_dump(mode="json", exclude_defaults=False),
            "pending": self.pending,
            "truncated": self.truncated,
        }


class FinalizeEvent(Model):
    run: RunContext


class SnapshotSummary(Model):
    """Finalize's result: the day's snapshot in counts."""

    run_id: RunId
    dt: Date
    targets: int = Field(ge=0)
    jobs_by_status: dict[JobStatus, int]
    rows: int = Field(ge=0)
    carried_over_targets: int = Field(ge=0)
    deferred_targets: int = Field(default=0, ge=0)  # left to a later run by the plan, nothing earlier to carry
    files: dict[str, int]
    replaced_files: int = Field(ge=0)

    @property
    def problems(self) -> int:
        return sum(n for status, n in self.jobs_by_status.items() if status is not JobStatus.COMPLETED)


class RecommendEvent(Model):
    run: RunContext


class GuardrailSummary(Model):
    """recommend's result: the day's guardrail recommendations in counts (the proposals are in S3)."""

    dt: Date
    targets: int = Field(ge=0)
    by_status: dict[str, int]
    policies: int = Field(ge=0)  # proposed SCPs, all targets
    services: int = Field(ge=0)  # proposed denials, all targets
    new: int = Field(ge=0)  # newly proposed since the previous day
    withdrawn: int = Field(ge=0)  # proposed the previous day, withdrawn today
    expired_exceptions: int = Field(ge=0)
    largest_policy_chars: int = Field(default=0, ge=0)
    location: str  # s3://bucket/prefix of the day's JSON files


class RecommendOutcome(Model):
    """What the state machine holds of recommend: its summary, or the name of its error (the run goes on)."""

    summary: GuardrailSummary | None = None
    error: str = ""


class ReportEvent(Model):
    run: RunContext
    guardrails: RecommendOutcome = RecommendOutcome()


class ReportPage(Model):
    """report's result: where the day's page is (the page itself stays in S3)."""

    dt: Date
    key: str  # reports/dt=…/index.html in the data bucket
    latest_key: str  # reports/latest/index.html, the same page
    uri: str  # s3://bucket/key
    console_url: str  # the object in the S3 console
    bytes: int = Field(ge=0)
    render_seconds: float = Field(ge=0)


class PageOutcome(Model):
    """What the state machine holds of report: the page, or the name of its error (the run goes on)."""

    page: ReportPage | None = None
    error: str = ""


class AlertEvent(Model):
    run: RunContext
    snapshot: SnapshotSummary
    guardrails: RecommendOutcome = RecommendOutcome()
    report: PageOutcome = PageOutcome()


class AlertResult(Model):
    published: bool
    message_id: str | None = None
    severity: str
    targets_with_unused: int = Field(ge=0)
    unused_services: int = Field(ge=0)
    newly_unused_services: int = Field(ge=0)
    problem_jobs: int = Field(ge=0)
    message_bytes: int = Field(ge=0)
