"""Test helpers: reading whole reports, and the expected report computed from a seed's ground truth."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.collect.limits import Ceiling, LimitState, MemoryLimitStore, SharedLimits
from lambdas.collector.collect.pacing import Budget, Pacer
from lambdas.collector.store.normalize import JobContext


def limits(
    admitted: int = 1,
    *,
    ceiling: int = 10_000,
    rate: float | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    store: MemoryLimitStore | None = None,
    throttle_count: Callable[[], int] = lambda: 0,
) -> SharedLimits:
    """Learned limits in memory: IAM has admitted `admitted` jobs at once so far, at most `ceiling`, at
    up to `rate` calls per second (None: unpaced)."""
    return SharedLimits(
        store or MemoryLimitStore(LimitState(admitted=admitted)),
        Ceiling(ceiling, rate or math.inf),
        lane="test",
        run_id="test",
        clock=clock,
        throttle_count=throttle_count,
    )


def budget(
    *,
    pacer: Pacer | None = None,
    time_left_ms: Callable[[], int] = lambda: 900_000,
    margin_ms: int = 0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
    shared: SharedLimits | None = None,
) -> Budget:
    """An invocation's budget for tests calling the stages directly: unpaced, a full 15 minutes, and
    limits that let it start every job at once (IAM has admitted ten thousand) unless `shared` says."""
    return Budget(
        pacer=pacer or Pacer(None),
        limits=shared or limits(10_000, clock=clock),
        time_left_ms=time_left_ms,
        margin_ms=margin_ms,
        clock=clock,
        sleep=sleep,
    )


def organization_targets(spec: OrganizationSpec) -> int:
    """Targets of scope `all`: the root, every OU, every member account (SCPs skip the management account)."""
    members = [a for a in spec.accounts if a.id != spec.management_account_id]
    return 1 + len(spec.ous) + len(members)


def rows_of(details: pa.Table) -> list[tuple[Any, ...]]:
    """The data of a snapshot, without what differs between runs (ids, dates of the run and jobs)."""
    names = [
        "target_path",
        "policy_id",
        "service_namespace",
        "service_name",
        "last_authenticated_time",
        "last_authenticated_region",
        "last_authenticated_entity_path",
        "total_authenticated_entities",
        "accessed",
        "services_accessible",
        "services_not_accessed",
    ]
    return sorted(tuple(row[name] for name in names) for row in details.select(names).to_pylist())


def complete_report(iam: Any, job_id: str, **kwargs: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """First page and every access detail, following markers while IsTruncated."""
    first = page = iam.get_organizations_access_report(JobId=job_id, **kwargs)
    assert page["JobStatus"] == "COMPLETED", page
    details = list(page["AccessDetails"])
    while page["IsTruncated"]:
        page = iam.get_organizations_access_report(JobId=job_id, Marker=page["Marker"], **kwargs)
        details.extend(page["AccessDetails"])
    return first, details


def expected_usage(spec: OrganizationSpec, accounts: set[str], now: datetime) -> dict[str, tuple[datetime, str, int]]:
    """namespace -> (latest time, latest account, accounts that used it) within 400 days."""
    since = now - timedelta(days=400)
    latest: dict[str, tuple[datetime, str]] = {}
    users: dict[str, set[str]] = {}
    for record in spec.activity:
        if record.account_id in accounts and since <= record.when <= now:
            users.setdefault(record.namespace, set()).add(record.account_id)
            if record.namespace not in latest or record.when > latest[record.namespace][0]:
                latest[record.namespace] = (record.when, record.account_id)
    return {ns: (when, account, len(users[ns])) for ns, (when, account) in latest.items()}


def subtree_accounts(spec: OrganizationSpec, entity_id: str) -> set[str]:
    return {a.id for a in spec.accounts if entity_id in spec.chain(a.id) and a.id != spec.management_account_id}


def job_context(
    path: str,
    *,
    collected_at: datetime,
    policy: str | None = None,
    run_id: str = "run-1",
    name: str | None = None,
) -> JobContext:
    """The context of a synthetic report job on `path`, for building snapshot tables in tests."""
    target_id = path.rsplit("/", 1)[-1]
    kind = "ROOT" if target_id.startswith("r-") else "ORGANIZATIONAL_UNIT" if target_id.startswith("ou-") else "ACCOUNT"
    return JobContext(
        run_id=run_id,
        collected_at=collected_at,
        organization_id=path.split("/", 1)[0],
        target_path=path,
        target_type=kind,
        target_id=target_id,
        target_name=name if name is not None else f"name of {target_id}",
        policy_id=policy,
        job_id=None,
        job_creation_date=None,
        job_completion_date=None,
        services_accessible=0,
        services_not_accessed=0,
    )


def ou_id(spec: OrganizationSpec, name: str) -> str:
    """The id of the seeded OU called `name`."""
    return next(unit.id for unit in spec.ous if unit.name == name)
