"""The rows of one access report: aggregation over accounts, and IAM's four sort orders.

A row carries only the fields IAM fills: a never-used service has ServiceName, ServiceNamespace and
TotalAuthenticatedEntities 0 (plus IAM's one exception, below); a used one also its Region, EntityPath
and LastAuthenticatedTime.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from iam_report_emulator.activity import ActivityStore
from iam_report_emulator.catalog import load_catalog

SORT_KEYS = (
    "SERVICE_NAMESPACE_ASCENDING",
    "SERVICE_NAMESPACE_DESCENDING",
    "LAST_AUTHENTICATED_TIME_ASCENDING",
    "LAST_AUTHENTICATED_TIME_DESCENDING",
)
DEFAULT_SORT_KEY = SORT_KEYS[0]
_NEVER = datetime.min.replace(tzinfo=UTC)
# Observed live (2026-09): a never-used `iam` row still carries Region us-east-1; no other never-used row
# has a Region.
NEVER_USED_REGIONS = {"iam": "us-east-1"}


@dataclass(frozen=True)
class AccessDetail:
    namespace: str
    name: str
    region: str | None
    entity_path: str | None
    when: datetime | None
    total: int

    def as_response(self) -> dict[str, Any]:
        """The AccessDetails member: the fields IAM fills, and no others (absent, not null)."""
        detail: dict[str, Any] = {"ServiceName": self.name, "ServiceNamespace": self.namespace}
        optional = {"Region": self.region, "EntityPath": self.entity_path, "LastAuthenticatedTime": self.when}
        detail.update((key, value) for key, value in optional.items() if value is not None)
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
            region = NEVER_USED_REGIONS.get(namespace)
            details.append(AccessDetail(namespace, name_of(namespace), region, None, None, 0))
        else:
            when, region, account = hit
            details.append(
                AccessDetail(namespace, name_of(namespace), region, path_of(account), when, counts[namespace])
            )
    return details


def _null_time_order(detail: AccessDetail, rank_of: Callable[[str], int | None]) -> tuple[bool, int, str]:
    # IAM's fixed internal order for rows without a time (captured); a service outside the capture
    # (none, while the catalog is the capture) after the ranked ones, by namespace.
    rank = rank_of(detail.namespace)
    return (rank is None, rank or 0, detail.namespace)


def sort_details(
    details: list[AccessDetail], sort_key: str, rank_of: Callable[[str], int | None] | None = None
) -> list[AccessDetail]:
    """IAM's orders. Namespace orders are alphabetical. Time orders put rows without a time in IAM's
    fixed internal order (`rank_of`, by default the catalog's captured `time_sort_rank`) ascending and
    its exact reverse descending, as observed; dated rows go by time, ties by namespace ascending."""
    by_namespace = sorted(details, key=lambda d: d.namespace)
    if sort_key == "SERVICE_NAMESPACE_ASCENDING":
        return by_namespace
    if sort_key == "SERVICE_NAMESPACE_DESCENDING":
        return by_namespace[::-1]
    rank = rank_of or load_catalog().rank_of
    never = sorted((d for d in details if d.when is None), key=lambda d: _null_time_order(d, rank))
    used = [d for d in by_namespace if d.when is not None]
    # Our guess, not observed: null-time rows before dated rows ascending and after them descending,
    # as if null were the oldest time (the capture had no dated rows).
    if sort_key == "LAST_AUTHENTICATED_TIME_ASCENDING":
        return never + sorted(used, key=lambda d: d.when or _NEVER)
    return sorted(used, key=lambda d: d.when or _NEVER, reverse=True) + never[::-1]
