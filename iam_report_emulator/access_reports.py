"""Organizations access report jobs: what IAM's two report calls do, kept per management account.

`AccessReportStore` holds the jobs, the emulator's settings, clock, throttler and activity record.
It knows nothing of HTTP: `iam_report_emulator.iam_extension` validates requests and calls it.
"""

from __future__ import annotations

import base64
import binascii
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from iam_report_emulator.activity import ActivityStore
from iam_report_emulator.catalog import load_catalog
from iam_report_emulator.clock import EmulatorClock
from iam_report_emulator.errors import InvalidInput, NoSuchEntity, ReportGenerationLimitExceeded, Throttling
from iam_report_emulator.organization import EntityPathError, OrganizationIndex, Target
from iam_report_emulator.reports_content import AccessDetail, build_details, sort_details
from iam_report_emulator.scp import ActionSet, accessible_services, narrow_to_policy
from iam_report_emulator.settings import TRACKING_DAYS, ReportSettings
from iam_report_emulator.throttling import Throttler

_CONTENT_CACHE_JOBS = 256  # reports kept computed; others are recomputed on demand


@dataclass(frozen=True)
class ReportJob:
    job_id: str
    owner: str  # the principal ARN that generated it
    target: Target
    policy_id: str | None
    created: datetime
    finishes_at: datetime | None  # None: never finishes
    fails: bool
    services: frozenset[str]
    accounts: tuple[str, ...]
    index: OrganizationIndex

    def status(self, now: datetime) -> str:
        if self.finishes_at is None or now < self.finishes_at:
            return "IN_PROGRESS"
        return "FAILED" if self.fails else "COMPLETED"


class AccessReportStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.settings = ReportSettings()
        self.clock = EmulatorClock()
        self.throttler = Throttler(self.clock.now)
        self.activity = ActivityStore()
        self.jobs: dict[str, ReportJob] = {}
        self._in_progress: set[str] = set()
        self.limit_exceeded = 0  # GenerateOrganizationsAccessReport calls refused for the concurrent-job cap
        self._contents: OrderedDict[str, list[AccessDetail]] = OrderedDict()
        self._index: tuple[int, OrganizationIndex] | None = None
        self._accessible: dict[tuple[Any, ...], ActionSet] = {}

    def configure(self, **changes: Any) -> ReportSettings:
        """Change some settings, keeping the rest (validated as a whole)."""
        with self._lock:
            self.settings = replace(self.settings, **changes)
            return self.settings

    def admit(self, operation: str) -> None:
        if not self.throttler.admit(operation):
            raise Throttling()

    # -- GenerateOrganizationsAccessReport ---------------------------------------------------

    def generate(self, org_backend: Any, entity_path: str, policy_id: str | None, owner: str) -> ReportJob:
        with self._lock:
            index = self._organization_index(org_backend)
            try:
                target = index.resolve(entity_path)
            except EntityPathError as error:
                raise InvalidInput(str(error)) from error
            policy = self._policy(org_backend, policy_id)
            now = self.clock.now()
            self._require_capacity(now)
            services, accounts = self._scope(index, target, policy)
            settings = self.settings
            finishes_at = None if target.path in settings.stuck_paths else now + timedelta(seconds=settings.job_seconds)
            job = ReportJob(
                job_id=settings.job_ids.pop(0) if settings.job_ids else str(uuid.uuid4()),
                owner=owner,
                target=target,
                policy_id=policy_id,
                created=now,
                finishes_at=finishes_at,
                fails=target.path in settings.failing_paths,
                services=services,
                accounts=accounts,
                index=index,
            )
            self.jobs[job.job_id] = job
            self._in_progress.add(job.job_id)
            return job

    def _organization_index(self, org_backend: Any) -> OrganizationIndex:
        if org_backend.org is None:
            raise InvalidInput(
                "EntityPath cannot be resolved: the caller's account is not the management account of an organization"
            )
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
        if policy_id is None:
            return None
        policy = next((p for p in org_backend.policies if p.id == policy_id), None)
        if policy is None or policy.type != "SERVICE_CONTROL_POLICY":
            raise InvalidInput(
                f"OrganizationsPolicyId '{policy_id}' is not a service control policy of the organization"
            )
        return policy

    def _require_capacity(self, now: datetime) -> None:
        self._in_progress = {j for j in self._in_progress if self.jobs[j].status(now) == "IN_PROGRESS"}
        if len(self._in_progress) >= self.settings.max_jobs_in_progress:
            self.limit_exceeded += 1
            raise ReportGenerationLimitExceeded(
                f"The maximum number of concurrent report jobs ({self.settings.max_jobs_in_progress}) "
                "is already running for this account."
            )

    def _scope(self, index: OrganizationIndex, target: Target, policy: Any) -> tuple[frozenset[str], tuple[str, ...]]:
        catalog = load_catalog()
        if target.is_management_account:
            return frozenset(catalog.services), (target.id,)
        levels = tuple(tuple(p.content for p in index.policies_at(entity)) for entity in target.chain)
        key: tuple[Any, ...] = (levels, policy.content if policy is not None else None)
        accessible = self._accessible.get(key)
        if accessible is None:
            accessible = accessible_services(levels, catalog)
            if policy is not None:
                accessible = narrow_to_policy(accessible, policy.content, catalog)
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
            response: dict[str, Any] = {"JobStatus": status, "JobCreationDate": job.created}
            if status == "IN_PROGRESS":
                return response
            response["JobCompletionDate"] = job.finishes_at
            if status == "FAILED":
                response["ErrorDetails"] = {
                    "Code": "ReportGenerationFailed",
                    "Message": f"The report for '{job.target.path}' could not be generated.",
                }
                return response
            details = sort_details(self._content(job), sort_key)
            start = _decode_marker(marker, job_id, sort_key) if marker else 0
            if start > len(details):
                raise InvalidInput("Marker is past the end of the report")
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


def _applies(index: OrganizationIndex, policy: Any, account_id: str) -> bool:
    return any(policy in index.policies_at(entity) for entity in index.chain_of(account_id))


def _encode_marker(job_id: str, sort_key: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{job_id}|{sort_key}|{offset}".encode()).decode()


def _decode_marker(marker: str, job_id: str, sort_key: str) -> int:
    try:
        marker_job, marker_sort, offset = base64.urlsafe_b64decode(marker.encode()).decode().split("|")
        position = int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidInput("Marker is not a marker that this API returned") from error
    if marker_job != job_id or marker_sort != sort_key:
        raise InvalidInput("Marker belongs to another job or SortKey")
    return position
