"""Organizations access report jobs: what IAM's two report calls do, kept per management account.

`AccessReportStore` holds the jobs, the emulator's settings, clock, throttlers (the report calls', and the
account's Organizations calls') and activity record.
It knows nothing of HTTP: `iam_report_emulator.iam_extension` validates requests and calls it.
"""

from __future__ import annotations

import base64
import binascii
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from iam_report_emulator.activity import ActivityStore
from iam_report_emulator.catalog import load_catalog
from iam_report_emulator.clock import EmulatorClock
from iam_report_emulator.errors import (
    AccessDenied,
    InvalidInput,
    NoSuchEntity,
    ReportGenerationLimitExceeded,
    ServiceFailure,
    Throttling,
    ValidationError,
)
from iam_report_emulator.iam_model import CapScope, JobKind
from iam_report_emulator.organization import EntityPathError, EntityType, OrganizationIndex, Target
from iam_report_emulator.reports_content import AccessDetail, build_details, sort_details
from iam_report_emulator.scp import ActionSet, accessible_services, narrow_to_policy
from iam_report_emulator.settings import TRACKING_DAYS, ReportSettings
from iam_report_emulator.throttling import EVERY_OPERATION, Throttler

_CONTENT_CACHE_JOBS = 256  # reports kept computed; others are recomputed on demand


# IAM's codes and messages for a job that ends FAILED (observed live, 2026-09).
INVALID_PATH = (
    "INVALID_ORGANIZATIONS_ENTITY_PATH",
    "The entity with the specified path does not exist in your organization.",
)
INVALID_POLICY = (
    "INVALID_ORGANIZATIONS_POLICY",
    "The policy with the specified ID does not exist in your organization.",
)
ACCESS_DENIED = (
    "ORGANIZATIONS_REPORT_ACCESS_DENIED",
    "Requester is not authorized to perform the required AWS Organizations Describe* and List* actions.",
)
OTHER_ORGANIZATION = "The organization ID in the specified entity path is different than your organization ID."


@dataclass(frozen=True)
class Failure:
    code: str
    message: str


@dataclass(frozen=True)
class ReportJob:
    job_id: str
    owner: str  # the principal ARN that generated it
    path: str  # as requested
    policy_id: str | None
    created: datetime
    finishes_at: datetime | None  # None: never finishes
    failure: Failure | None  # set: the job ends FAILED with it
    target: Target | None = None  # None: the path did not resolve
    services: frozenset[str] = frozenset()
    accounts: tuple[str, ...] = ()
    index: OrganizationIndex | None = None

    def status(self, now: datetime) -> str:
        if self.finishes_at is None or now < self.finishes_at:
            return "IN_PROGRESS"
        return "FAILED" if self.failure else "COMPLETED"


class AccessReportStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.settings = ReportSettings()
        self.clock = EmulatorClock()
        self.throttler = Throttler(self.clock.now)
        self.organizations_throttler = Throttler(self.clock.now)  # every Organizations call of the account
        self.activity = ActivityStore()
        self._admitted = 0  # report calls past the throttler: the service failure bursts count them
        self.service_failures = 0
        self.jobs: dict[str, ReportJob] = {}
        self._in_progress: set[str] = set()
        self.limit_exceeded = 0  # GenerateOrganizationsAccessReport calls refused for the concurrent-job cap
        self.reused = 0  # GenerateOrganizationsAccessReport calls answered with a job of the reuse window
        self._contents: OrderedDict[str, list[AccessDetail]] = OrderedDict()
        self._index: tuple[int, OrganizationIndex] | None = None
        self._accessible: dict[tuple[Any, ...], ActionSet] = {}

    def configure(self, **changes: Any) -> ReportSettings:
        """Change some settings, keeping the rest (validated as a whole)."""
        with self._lock:
            before, self.settings = self.settings, replace(self.settings, **changes)
            limit = self.settings.organizations_rate_limit
            if limit != before.organizations_rate_limit:
                self.organizations_throttler.configure(limits={EVERY_OPERATION: limit} if limit else None)
            return self.settings

    def admit_organizations(self, operation: str) -> bool:
        """Count an Organizations call of this account; False: answer it `TooManyRequestsException`."""
        return self.organizations_throttler.admit(operation)

    def admit(self, operation: str) -> None:
        if not self.throttler.admit(operation):
            raise Throttling()
        bursts = self.settings.service_failure_bursts
        if bursts is not None:
            every, burst = bursts
            with self._lock:
                position = self._admitted % (every + burst)
                self._admitted += 1
                if position >= every:
                    self.service_failures += 1
                    raise ServiceFailure()

    # -- GenerateOrganizationsAccessReport ---------------------------------------------------

    def generate(
        self, org_backend: Any, entity_path: str, policy_id: str | None, owner: str, missing_reads: Sequence[str] = ()
    ) -> ReportJob:
        """Start (or, inside the reuse window, return) the caller's job on `entity_path`.

        As IAM was observed: only another organization's id is refused at once; a path that does
        not resolve, an unknown policy and a caller without the Organizations reads (`missing_reads`)
        get a job that ends FAILED. A new job needs room under the cap (per account or per path).
        """
        with self._lock:
            index = self._organization_index(org_backend)
            if entity_path.split("/", 1)[0] != index.organization_id:
                raise AccessDenied(OTHER_ORGANIZATION)
            now = self.clock.now()
            reused = self._reusable(owner, entity_path, policy_id, now)
            if reused is not None:
                self.reused += 1
                return reused
            self._require_capacity(entity_path, now)
            job = self._new_job(
                index,
                org_backend=org_backend,
                entity_path=entity_path,
                policy_id=policy_id,
                owner=owner,
                missing_reads=missing_reads,
                now=now,
            )
            self.jobs[job.job_id] = job
            self._in_progress.add(job.job_id)
            return job

    def _new_job(
        self,
        index: OrganizationIndex,
        *,
        org_backend: Any,
        entity_path: str,
        policy_id: str | None,
        owner: str,
        missing_reads: Sequence[str],
        now: datetime,
    ) -> ReportJob:
        settings = self.settings
        job_id = settings.job_ids.pop(0) if settings.job_ids else str(uuid.uuid4())
        target, failure = self._resolve(index, entity_path)
        policy = self._policy(org_backend, policy_id)
        if failure is None and policy_id is not None and policy is None:
            failure = Failure(*INVALID_POLICY)
        if failure is None and missing_reads:
            failure = Failure(*ACCESS_DENIED)
        if failure is None and entity_path in settings.failing_paths:
            failure = Failure("ReportGenerationFailed", f"The report for '{entity_path}' could not be generated.")
        kind = _kind(target, policy_id, failure)
        seconds = settings.job_seconds
        if seconds is None:
            seconds = settings.model.job_seconds(kind, f"{entity_path}|{policy_id}") * settings.time_scale
        stuck = target is not None and target.path in settings.stuck_paths
        job = ReportJob(
            job_id=job_id,
            owner=owner,
            path=entity_path,
            policy_id=policy_id,
            created=now,
            finishes_at=None if stuck else now + timedelta(seconds=seconds),
            failure=failure,
        )
        if failure is not None or target is None:
            return job
        services, accounts = self._scope(index, target, policy)
        return replace(job, target=target, services=services, accounts=accounts, index=index)

    @staticmethod
    def _resolve(index: OrganizationIndex, entity_path: str) -> tuple[Target | None, Failure | None]:
        if entity_path.endswith("/"):  # IAM fails such a job (observed): the path does not resolve
            return None, Failure(*INVALID_PATH)
        try:
            return index.resolve(entity_path), None
        except EntityPathError:
            return None, Failure(*INVALID_PATH)

    def _reusable(self, owner: str, path: str, policy_id: str | None, now: datetime) -> ReportJob | None:
        """The caller's own job on the same path and policy created within the reuse window (observed:
        60 s, FAILED jobs included; never another caller's)."""
        window = timedelta(seconds=self.settings.reuse_seconds)
        candidates = [
            job
            for job in self.jobs.values()
            if job.owner == owner and job.path == path and job.policy_id == policy_id and now - job.created < window
        ]
        return max(candidates, key=lambda job: job.created) if candidates else None

    def _organization_index(self, org_backend: Any) -> OrganizationIndex:
        if org_backend.org is None:
            # Our guess (not captured): a caller outside an organization is denied at once.
            raise AccessDenied("The caller's account is not the management account of an organization.")
        fingerprint = hash(
            (
                id(org_backend.org),
                tuple((a.id, a.parent_id, a.status) for a in org_backend.accounts),
                tuple((o.id, o.parent_id) for o in org_backend.ou),
            )
        )
        if self._index is None or self._index[0] != fingerprint:
            self._index = (fingerprint, OrganizationIndex(org_backend))
        return self._index[1]

    @staticmethod
    def _policy(org_backend: Any, policy_id: str | None) -> Any:
        """The organization's SCP `policy_id`; None when there is none such (the job will fail)."""
        if policy_id is None:
            return None
        policy = next((p for p in org_backend.policies if p.id == policy_id), None)
        return policy if policy is not None and policy.type == "SERVICE_CONTROL_POLICY" else None

    def in_progress(self, now: datetime) -> list[ReportJob]:
        self._in_progress = {j for j in self._in_progress if self.jobs[j].status(now) == "IN_PROGRESS"}
        return [self.jobs[j] for j in self._in_progress]

    def _require_capacity(self, path: str, now: datetime) -> None:
        running = self.in_progress(now)
        if self.settings.model.cap_scope is CapScope.PATH:
            running = [job for job in running if job.path == path]
        if len(running) >= self.settings.job_cap:
            self.limit_exceeded += 1
            # IAM's own words (observed), whichever reading of the cap is modelled.
            raise ReportGenerationLimitExceeded("Maximum number of concurrent jobs exceeded")

    def _scope(self, index: OrganizationIndex, target: Target, policy: Any) -> tuple[frozenset[str], tuple[str, ...]]:
        catalog = load_catalog()
        if target.is_management_account:
            return frozenset(catalog.services), (target.id,)
        levels = tuple(tuple(p.content for p in index.policies_at(entity)) for entity in target.chain)
        reading = self.settings.principal_exempt_denies
        key: tuple[Any, ...] = (levels, policy.content if policy is not None else None, reading)
        accessible = self._accessible.get(key)
        if accessible is None:
            accessible = accessible_services(levels, catalog, principal_exempt_denies=reading)
            if policy is not None:
                accessible = narrow_to_policy(accessible, policy.content, catalog, principal_exempt_denies=reading)
            self._accessible[key] = accessible
        accounts = index.accounts_in_scope(target)
        if policy is not None:
            accounts = [a for a in accounts if _applies(index, policy, a)]
        return frozenset(accessible), tuple(accounts)

    # -- GetOrganizationsAccessReport --------------------------------------------------------

    def read(self, job_id: str, owner: str, max_items: int, marker: str | None, sort_key: str) -> dict[str, Any]:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or job.owner != owner:
                # IAM answers a job generated by another principal exactly as an unknown one.
                raise NoSuchEntity(f"The request was rejected because the job '{job_id}' does not exist.")
            status = job.status(self.clock.now())
            # Fields as observed: IN_PROGRESS carries only these three; FAILED adds its completion
            # date and ErrorDetails, no counts; COMPLETED pages carry both counts on every page.
            response: dict[str, Any] = {"JobStatus": status, "JobCreationDate": job.created, "IsTruncated": False}
            if status == "IN_PROGRESS":
                return response
            response["JobCompletionDate"] = job.finishes_at
            if job.failure is not None:
                response["ErrorDetails"] = {"Message": job.failure.message, "Code": job.failure.code}
                return response
            details = sort_details(self._content(job), sort_key)
            start = _decode_marker(marker, job_id, sort_key) if marker else 0
            if start > len(details):
                raise InvalidInput(BAD_MARKER)
            size = min(max_items, self.settings.short_page_items or max_items)
            page = details[start : start + size]
            response["NumberOfServicesAccessible"] = len(details)
            response["NumberOfServicesNotAccessed"] = sum(1 for d in details if d.when is None)
            response["AccessDetails"] = [d.as_response() for d in page]
            response["IsTruncated"] = start + size < len(details)
            if response["IsTruncated"]:
                response["Marker"] = _encode_marker(job_id, sort_key, start + size)
            return response

    def _content(self, job: ReportJob) -> list[AccessDetail]:
        if job.index is None:
            raise ValueError(f"job {job.job_id} has no report: it did not resolve")
        cached = self._contents.get(job.job_id)
        if cached is not None:
            self._contents.move_to_end(job.job_id)
            return cached
        details = build_details(
            services=job.services,
            accounts=job.accounts,
            activity=self.activity,
            since=job.created - timedelta(days=TRACKING_DAYS),
            until=job.created,
            path_of=job.index.path_of,
            name_of=lambda ns: self.settings.service_names.get(ns) or load_catalog().name_of(ns),
        )
        self._contents[job.job_id] = details
        if len(self._contents) > _CONTENT_CACHE_JOBS:
            self._contents.popitem(last=False)
        return details


def _kind(target: Target | None, policy_id: str | None, failure: Failure | None) -> JobKind:
    if failure is not None or target is None:
        return JobKind.FAILED
    if policy_id is not None:
        return JobKind.POLICY
    return JobKind.ROOT if target.type is EntityType.ROOT or target.is_management_account else JobKind.FULL


def _applies(index: OrganizationIndex, policy: Any, account_id: str) -> bool:
    return any(policy in index.policies_at(entity) for entity in index.chain_of(account_id))


def _encode_marker(job_id: str, sort_key: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{job_id}|{sort_key}|{offset}".encode()).decode()


BAD_MARKER = "The marker passed in the request was invalid."


def _decode_marker(marker: str, job_id: str, sort_key: str) -> int:
    """The offset a marker stands for. As observed: a marker works with another MaxItems; with
    another SortKey or JobId it is `InvalidInput`; one IAM never issued is `ValidationError`."""
    try:
        marker_job, marker_sort, offset = base64.urlsafe_b64decode(marker.encode()).decode().split("|")
        position = int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise ValidationError("Invalid Marker.") from error
    if marker_job != job_id or marker_sort != sort_key:
        raise InvalidInput(BAD_MARKER)
    return position
