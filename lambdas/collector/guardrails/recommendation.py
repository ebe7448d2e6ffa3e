"""What a recommendation says, as its JSON file and the `scp_recommendations` rows hold it."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import Field

from lambdas.collector.models import Date, Model, RunId, TargetId, TargetType, UtcDatetime


class Status(StrEnum):
    PROPOSED = "PROPOSED"  # SCPs to review and apply
    NOTHING_TO_DENY = "NOTHING_TO_DENY"  # every allowed service is used, kept or denied already
    HELD = "HELD"  # no current report today: nothing new; the last proposal stands as it was
    NO_EVIDENCE = "NO_EVIDENCE"  # no account in scope, or all joined within the window
    NO_SLOT = "NO_SLOT"  # candidates, but every attachment slot is taken by SCPs the collector does not manage


class Change(StrEnum):
    """A service since the previous day's recommendation of the same target."""

    NEW = "NEW"  # newly proposed
    UNCHANGED = "UNCHANGED"  # proposed both days
    WITHDRAWN = "WITHDRAWN"  # proposed yesterday, not today (used again, kept, no evidence, no slot)
    DONE = "DONE"  # proposed yesterday, denied now (applied, or no longer allowed)


class TargetRef(Model):
    id: TargetId
    type: TargetType
    name: str | None
    path: str


class ReportEvidence(Model):
    collected_at: UtcDatetime  # when the run that made the report started
    age_days: int = Field(ge=0)
    services_allowed: int = Field(ge=0)
    failed_today: str | None = None  # this run's job for the target, when it did not complete


class ScopeEvidence(Model):
    accounts: int = Field(ge=0)
    joined_within_window: int = Field(ge=0)
    earliest_joined: UtcDatetime | None
    evidence_days: int = Field(ge=0)  # from the earliest join to the report, at most IAM's 400 days


class ServiceEvidence(Model):
    namespace: str
    name: str
    last_used: UtcDatetime | None  # None: not used by anyone in scope in IAM's 400 days
    days_unused: int | None  # as of the report; None: used too recently to count
    change: Change
    policy: str | None = None  # the proposed SCP that denies it
    reason: str | None = None  # why it was withdrawn or is done


class KeptService(Model):
    namespace: str
    why: str  # never_deny, or the exception's reason and expiry


class ExpiredException(Model):
    target_id: TargetId
    services: list[str]
    expired: date
    reason: str


class ProposedScp(Model):
    name: str
    description: str
    chars: int = Field(ge=0)  # UTF-8 bytes of `content`, as AWS counts
    services: int = Field(ge=1)
    content: str  # minified JSON: what to pass to CreatePolicy


class Attachment(Model):
    id: str
    name: str
    managed_by: str


class Slots(Model):
    attached: list[Attachment]
    max: int = Field(ge=1)
    left: int = Field(ge=0)  # beside the attached SCPs not the collector's (its own are replaced)


class Recommendation(Model):
    dt: Date
    run_id: RunId
    organization_id: str
    target: TargetRef
    status: Status
    reason: str | None = None
    window_days: int = Field(ge=1)
    report: ReportEvidence | None
    scope: ScopeEvidence
    policies: list[ProposedScp] = Field(default_factory=list)
    services: list[ServiceEvidence] = Field(default_factory=list)  # proposed (NEW or UNCHANGED), namespace order
    withdrawn: list[ServiceEvidence] = Field(default_factory=list)  # WITHDRAWN or DONE since the previous day
    used_within_window: int = Field(default=0, ge=0)
    kept: list[KeptService] = Field(default_factory=list)
    expired_exceptions: list[ExpiredException] = Field(default_factory=list)
    already_denied: list[str] = Field(default_factory=list)
    left_out: list[str] = Field(default_factory=list)  # candidates with no attachment slot left
    slots: Slots | None = None

    @property
    def new(self) -> int:
        return sum(s.change is Change.NEW for s in self.services)
