"""IAM's two report calls, each answered as a named outcome instead of a response or an exception.

`start` (GenerateOrganizationsAccessReport) gives `Started`, `NotNow` or `Rejected`; `read`
(GetOrganizationsAccessReport) gives `Running`, `Completed` (one page), `Failed` (the job failed),
`NotNow` or `Rejected`. `NotNow` is IAM saying "not now" rather than "never" — the job cap
(`ReportGenerationLimitExceeded`), throttling that outlasted the client's retries, a service
failure, or the network: the job stays as it was for a later attempt. Every call is paced and
counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.collector.collect.limits import SharedLimits
from lambdas.collector.collect.pacing import Pacer
from lambdas.collector.models import Target
from lambdas.collector.store.normalize import as_utc

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

# Pages of up to 1000 rows: one read carries a whole report (~455 services).
MAX_ITEMS = 1000
LIMIT_EXCEEDED = "ReportGenerationLimitExceeded"
THROTTLING = "Throttling"
TRY_LATER = frozenset({LIMIT_EXCEEDED, THROTTLING, "ServiceFailure", "ServiceUnavailable"})


@dataclass(frozen=True)
class Started:
    job_id: str


@dataclass(frozen=True)
class NotNow:
    """IAM said "not now" (or the call never got an answer): try again later."""

    code: str
    message: str

    @property
    def refused(self) -> bool:
        """IAM refused to start another job: its cap on jobs in progress is reached."""
        return self.code == LIMIT_EXCEEDED


@dataclass(frozen=True)
class Rejected:
    """The call failed for good (access denied, an unknown job, …)."""

    code: str
    message: str


@dataclass(frozen=True)
class Running:
    """The job is still IN_PROGRESS."""


@dataclass(frozen=True)
class Completed:
    """One page of a COMPLETED job."""

    page: Mapping[str, Any] = field(repr=False)

    @property
    def created(self) -> datetime | None:
        return as_utc(self.page.get("JobCreationDate"))

    @property
    def completed(self) -> datetime | None:
        return as_utc(self.page.get("JobCompletionDate"))

    @property
    def accessible(self) -> int:
        return int(self.page.get("NumberOfServicesAccessible") or 0)

    @property
    def not_accessed(self) -> int:
        return int(self.page.get("NumberOfServicesNotAccessed") or 0)

    @property
    def details(self) -> list[Mapping[str, Any]]:
        return list(self.page.get("AccessDetails", []))

    @property
    def marker(self) -> str | None:
        """The next page's marker; None on the last page."""
        return str(self.page["Marker"]) if self.page.get("IsTruncated") and self.page.get("Marker") else None


@dataclass(frozen=True)
class Failed:
    """The job ended FAILED; IAM's ErrorDetails say why."""

    code: str
    message: str | None
    created: datetime | None
    completed: datetime | None


StartOutcome = Started | NotNow | Rejected
ReadOutcome = Running | Completed | Failed | NotNow | Rejected
_Outcome = TypeVar("_Outcome", StartOutcome, ReadOutcome)


def _error(error: ClientError | BotoCoreError) -> NotNow | Rejected:
    if isinstance(error, BotoCoreError):
        return NotNow(type(error).__name__, str(error)[:1000])
    details = error.response.get("Error", {})
    code, message = str(details.get("Code", "ClientError")), str(details.get("Message", ""))[:1000]
    return NotNow(code, message) if code in TRY_LATER else Rejected(code, message)


class ReportApi:
    """The report calls of one invocation, paced by `pacer` at the lane's share of the learned rate,
    counted in `calls`; each throttle is reported to the shared limits."""

    def __init__(self, iam: IAMClient, pacer: Pacer, limits: SharedLimits) -> None:
        self._iam, self._pacer, self._limits = iam, pacer, limits
        self.calls = 0

    def start(self, target: Target) -> StartOutcome:
        return self._learned(self._start(target))

    def read(self, job_id: str, marker: str | None = None) -> ReadOutcome:
        return self._learned(self._read(job_id, marker))

    def _learned(self, outcome: _Outcome) -> _Outcome:
        self._limits.after_call(isinstance(outcome, NotNow) and outcome.code == THROTTLING)
        return outcome

    def _start(self, target: Target) -> StartOutcome:
        self._count()
        try:
            if target.policy_id:
                response = self._iam.generate_organizations_access_report(
                    EntityPath=target.path, OrganizationsPolicyId=target.policy_id
                )
            else:
                response = self._iam.generate_organizations_access_report(EntityPath=target.path)
        except (ClientError, BotoCoreError) as error:
            return _error(error)
        return Started(response["JobId"])

    def _read(self, job_id: str, marker: str | None = None) -> ReadOutcome:
        self._count()
        try:
            if marker is None:
                page = self._iam.get_organizations_access_report(JobId=job_id, MaxItems=MAX_ITEMS)
            else:
                page = self._iam.get_organizations_access_report(JobId=job_id, MaxItems=MAX_ITEMS, Marker=marker)
        except (ClientError, BotoCoreError) as error:
            return _error(error)
        status = page["JobStatus"]
        if status == "IN_PROGRESS":
            return Running()
        if status == "FAILED":
            details = page.get("ErrorDetails") or {}
            return Failed(
                code=str(details.get("Code", "Unknown")),
                message=details.get("Message"),
                created=as_utc(page.get("JobCreationDate")),
                completed=as_utc(page.get("JobCompletionDate")),
            )
        return Completed(page)

    def _count(self) -> None:
        self.calls += 1
        self._pacer.rate = self._limits.calls_per_second
        self._pacer()
