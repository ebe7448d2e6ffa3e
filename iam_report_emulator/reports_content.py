"""The rows of one access report: aggregation over accounts, and IAM's four sort orders."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from iam_report_emulator.activity import ActivityStore

SORT_KEYS = (
    "SERVICE_NAMESPACE_ASCENDING",
    "SERVICE_NAMESPACE_DESCENDING",
    "LAST_AUTHENTICATED_TIME_ASCENDING",
    "LAST_AUTHENTICATED_TIME_DESCENDING",
)
DEFAULT_SORT_KEY = SORT_KEYS[0]
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AccessDetail:
    namespace: str
    name: str
    region: str | None
    entity_path: str | None
    when: datetime | None
    total: int

    def as_response(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"ServiceName": self.name, "ServiceNamespace": self.namespace}
        if self.when is not None:
            detail.update(Region=self.region, EntityPath=self.entity_path, LastAuthenticatedTime=self.when)
        detail["TotalAuthenticatedEntities"] = self.total
        return detail


def build_details(
    *,
    services: frozenset[str],
    accounts: Iterable[str],
    activity: ActivityStore,
    since: datetime,
    until: datetime,
    path_of: Callable[[str], str],
    name_of: Callable[[str], str],
) -> list[AccessDetail]:
    """One row per accessible service: the latest access in [since, until] across `accounts`."""
    counts: dict[str, int] = {}
    latest: dict[str, tuple[datetime, str, str]] = {}
    for account in accounts:
        for namespace, access in activity.of_account(account).items():
            if namespace not in services or not since <= access.when <= until:
                continue
            counts[namespace] = counts.get(namespace, 0) + 1
            known = latest.get(namespace)
            if known is None or access.when > known[0]:
                latest[namespace] = (access.when, access.region, account)
    details = []
    for namespace in sorted(services):
        hit = latest.get(namespace)
        if hit is None:
            details.append(AccessDetail(namespace, name_of(namespace), None, None, None, 0))
        else:
            when, region, account = hit
            details.append(
                AccessDetail(namespace, name_of(namespace), region, path_of(account), when, counts[namespace])
            )
    return details


def sort_details(details: list[AccessDetail], sort_key: str) -> list[AccessDetail]:
    """IAM's orders. Time orders put never-accessed services (null time) first when ascending and
    last when descending, as if null were the oldest time; ties go by namespace ascending."""
    by_namespace = sorted(details, key=lambda d: d.namespace)
    if sort_key == "SERVICE_NAMESPACE_ASCENDING":
        return by_namespace
    if sort_key == "SERVICE_NAMESPACE_DESCENDING":
        return by_namespace[::-1]
    never = [d for d in by_namespace if d.when is None]
    used = [d for d in by_namespace if d.when is not None]
    if sort_key == "LAST_AUTHENTICATED_TIME_ASCENDING":
        return never + sorted(used, key=lambda d: d.when or _NEVER)
    return sorted(used, key=lambda d: d.when or _NEVER, reverse=True) + never
