"""Services that SCPs allow but nobody uses, per target, and what changed since the previous snapshot:
the findings behind the alert.

Pure functions over Arrow tables of one snapshot (and the one before it). Filtering, joining and
grouping happen in Arrow compute, so a 10,000-account organization (~4.5M rows) never becomes
millions of Python objects: only the per-target summaries do, with at most `services_per_target`
services each (and the namespaces that changed).

A target is keyed by (target_path, policy_id): the report over all SCPs (policy_id null) and a
report narrowed to one SCP are different findings even for the same entity.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lambdas.collector.models import JobStatus
from lambdas.collector.store.schema import ACCESS_DETAILS

_TARGET_COLUMNS = ["target_path", "target_type", "target_id", "target_name", "policy_id"]
_SERVICE_COLUMNS = ["service_namespace", "service_name", "last_authenticated_time"]
ACCESS_COLUMNS = ["collected_at", "carried_forward", *_TARGET_COLUMNS, *_SERVICE_COLUMNS]
# What the previous snapshot is compared on: whether each (target, namespace) was in use then.
PREVIOUS_COLUMNS = ["collected_at", "target_path", "policy_id", "service_namespace", "last_authenticated_time"]
JOB_COLUMNS = [*_TARGET_COLUMNS, "job_status", "error_code", "error_message", "collected_at", "data_age_days"]

# Joins never match null keys, so the all-SCPs report (policy_id null) is keyed as "" (no SCP id is empty).
_POLICY = "_policy"
KEY = ["target_path", _POLICY]
SERVICE_KEY = [*KEY, "service_namespace"]
_TIME = ACCESS_DETAILS.arrow_schema.field("last_authenticated_time").type


@dataclass(frozen=True)
class UnusedService:
    namespace: str
    name: str
    last_authenticated_time: datetime | None  # None: not used in IAM's 400-day tracking period


@dataclass(frozen=True)
class TargetFindings:
    """One target's unused services, and its changes since the previous snapshot; `unused` may hold
    only the first of `unused_count` of them."""

    target_path: str
    target_type: str
    target_id: str
    target_name: str | None
    policy_id: str | None
    unused_count: int
    unused: tuple[UnusedService, ...]  # never used first, then least recently used
    newly_unused: tuple[str, ...]  # namespaces, sorted
    newly_used: tuple[str, ...] = ()  # namespaces in use now, unused in the previous snapshot; sorted
    allowed_count: int = 0  # services its SCPs allow (rows in the snapshot), the allowlisted included
    accounts_below: int = 0  # accounts of the snapshot under this root or OU

    @property
    def changed(self) -> int:
        return len(self.newly_unused) + len(self.newly_used)


@dataclass(frozen=True)
class ProblemJob:
    """A report job that did not complete: its target's data is missing from (or stale in) the snapshot."""

    target_path: str
    target_type: str
    target_id: str
    target_name: str | None
    policy_id: str | None
    status: str
    error_code: str | None
    error_message: str | None


@dataclass(frozen=True)
class StaleTarget:
    """A target whose data in the snapshot is older than the cadence, or that was never collected."""

    target_path: str
    target_type: str
    target_id: str
    target_name: str | None
    policy_id: str | None
    data_age_days: int | None  # None: deferred by the plan, never collected
    collected_at: datetime | None


@dataclass(frozen=True)
class Findings:
    """What the alert reports about one snapshot; the totals are over all targets, not only those kept."""

    as_of: datetime
    unused_after_days: int
    targets_checked: int  # targets with rows in the snapshot
    compared_with_previous: bool
    targets: tuple[TargetFindings, ...]  # with unused or newly used services; most unused first, then by path
    problems: tuple[ProblemJob, ...]
    completed_jobs: int  # COMPLETED records of the snapshot (collected this run or carried)
    stale: tuple[StaleTarget, ...] = ()  # oldest first, never collected before all
    stale_after_days: int | None = None

    @property
    def targets_with_unused(self) -> int:
        return sum(target.unused_count > 0 for target in self.targets)

    @property
    def unused_services(self) -> int:
        return sum(target.unused_count for target in self.targets)

    @property
    def newly_unused_services(self) -> int:
        return sum(len(target.newly_unused) for target in self.targets)

    @property
    def newly_used_services(self) -> int:
        return sum(len(target.newly_used) for target in self.targets)

    @property
    def problem_jobs(self) -> int:
        return len(self.problems)

    @property
    def all_jobs_failed(self) -> bool:
        """No report completed: the snapshot holds no access data to judge."""
        return self.problem_jobs > 0 and self.completed_jobs == 0


def find_unused(
    current: pa.Table,
    previous: pa.Table | None,
    jobs: pa.Table,
    *,
    as_of: datetime,
    unused_after_days: int,
    allowlist: frozenset[str] = frozenset(),
    allowlist_by_target: Mapping[str, frozenset[str]] | None = None,
    services_per_target: int | None = None,
    stale_after_days: int | None = None,
) -> Findings:
    """Unused, newly unused and newly used services per target of `current`, and the run's problem jobs.

    A service is unused when never used in the tracking period or last used more than
    `unused_after_days` before its row's own `collected_at` (a row carried forward from an earlier
    report is judged as of that report, like `previous`). Newly unused: unused now, in use in
    `previous`; newly used: the other way round. A carried row is yesterday's row again, so it is
    never either. Targets whose data is older than `stale_after_days` (and targets the plan deferred
    before they were ever collected) are listed as stale. Allowlisted namespaces (globally, or for a
    target id and its subtree) are left out before anything is counted. `services_per_target` bounds
    the services kept per target (the counts stay complete; 0 keeps none and skips their sort).
    """
    window = timedelta(days=unused_after_days)
    # Only the key and service columns travel through filter and sort; names come once per target.
    rows = _keyed(current.select(["target_path", "policy_id", "collected_at", "carried_forward", *_SERVICE_COLUMNS]))
    unused_now = _unused(rows["last_authenticated_time"], pc.subtract(rows["collected_at"], _duration(window)))
    counted = pc.invert(_allowlisted(rows, allowlist, allowlist_by_target or {}))
    # One filter with one combined mask: every filter copies the surviving rows' strings.
    unused = rows.filter(pc.and_(unused_now, counted))
    newly_unused, newly_used = _changes(rows, unused_now, counted, previous, window)
    targets = _targets(current)
    return Findings(
        as_of=as_of,
        unused_after_days=unused_after_days,
        targets_checked=len(targets),
        compared_with_previous=previous is not None,
        targets=_per_target(unused, newly_unused, newly_used, targets, services_per_target),
        problems=_problem_jobs(jobs),
        completed_jobs=pc.sum(pc.equal(jobs["job_status"], JobStatus.COMPLETED.value)).as_py() or 0,
        stale=_stale(jobs, stale_after_days),
        stale_after_days=stale_after_days,
    )


def _duration(window: timedelta) -> Any:
    return pa.scalar(window, pa.duration("us"))


def _keyed(table: pa.Table) -> pa.Table:
    return table.append_column(_POLICY, pc.fill_null(table["policy_id"], ""))


def _unused(last_used: Any, cutoff: Any) -> Any:
    # Strictly before the cutoff: a service last used exactly `unused_after_days` ago still counts as used.
    return pc.or_kleene(pc.is_null(last_used), pc.less(last_used, cutoff))


def _targets(current: pa.Table) -> dict[tuple[str, str], dict[str, Any]]:
    """Type, id, name and row count of every target key in the snapshot (constant within a target)."""
    grouped = (
        _keyed(current.select(_TARGET_COLUMNS))
        .group_by(KEY)
        .aggregate([("target_type", "one"), ("target_id", "one"), ("target_name", "one"), ([], "count_all")])
    )
    return {(row["target_path"], row[_POLICY]): row for row in grouped.to_pylist()}


def _accounts_below(targets: Mapping[tuple[str, str], Mapping[str, Any]]) -> Counter[str]:
    """Accounts of the snapshot under each root and OU id (from the accounts' paths: a few per target)."""
    accounts = {path for (path, _), target in targets.items() if target["target_type_one"] == "ACCOUNT"}
    # o-…/r-…/ou-…/…/account: the segments between the organization and the account are its ancestors.
    return Counter(ancestor for path in accounts for ancestor in path.split("/")[1:-1])


def _allowlisted(rows: pa.Table, allowlist: frozenset[str], by_target: Mapping[str, frozenset[str]]) -> Any:
    """Mask of the rows whose namespace is allowlisted globally or for an entity above (or at) the target."""
    namespaces, paths = rows["service_namespace"], rows["target_path"]
    listed = pc.is_in(namespaces, value_set=pa.array(sorted(allowlist), pa.string()))
    entries = {target_id: allowed for target_id, allowed in by_target.items() if allowed}
    if not entries:
        return listed
    distinct = pc.unique(paths)
    for target_id, allowed in entries.items():  # one pass per configured entry, not per row
        # Whole segments of the (few, distinct) paths: an OU covers its subtree, never ids that merely start alike.
        subtree = distinct.filter(pc.match_substring_regex(distinct, f"/{re.escape(target_id)}(/|$)"))
        here = pc.and_(
            pc.is_in(paths, value_set=subtree), pc.is_in(namespaces, value_set=pa.array(sorted(allowed), pa.string()))
        )
        listed = pc.or_(listed, here)
    return listed


def _changes(
    rows: pa.Table, unused_now: Any, counted: Any, previous: pa.Table | None, window: timedelta
) -> tuple[pa.Table, pa.Table]:
    """SERVICE_KEY of the counted rows newly unused (in use in `previous`) and newly used (unused then)."""
    if previous is None:
        none = rows.select(SERVICE_KEY).slice(0, 0)
        return none, none
    before = _keyed(previous.select(PREVIOUS_COLUMNS))
    # Each row against its own run's time: the previous snapshot is judged as it stood then.
    unused_then = _unused(before["last_authenticated_time"], pc.subtract(before["collected_at"], _duration(window)))
    # A carried row is the previous row again: it says nothing new.
    fresh = pc.and_(counted, pc.invert(rows["carried_forward"]))

    def newly(now: Any, then: Any) -> pa.Table:
        return _semi(rows.filter(pc.and_(fresh, now)).select(SERVICE_KEY), before.filter(then).select(SERVICE_KEY))

    return newly(unused_now, pc.invert(unused_then)), newly(pc.invert(unused_now), unused_then)


def _semi(now: pa.Table, then: pa.Table) -> pa.Table:
    """The rows of `now` whose key is in `then`, each at most once however often the key repeats there."""
    # The join hashes its right side: the smaller one (the few services used among many unused, or the other way).
    if now.num_rows <= then.num_rows:
        return then.join(now, keys=SERVICE_KEY, join_type="right semi")
    return now.join(then, keys=SERVICE_KEY, join_type="left semi")


def _per_target(
    unused: pa.Table,
    newly_unused: pa.Table,
    newly_used: pa.Table,
    targets: Mapping[tuple[str, str], Mapping[str, Any]],
    services_per_target: int | None,
) -> tuple[TargetFindings, ...]:
    counts = unused.group_by(KEY).aggregate([([], "count_all")]).sort_by([(name, "ascending") for name in KEY])
    counts_by_target = {(row["target_path"], row[_POLICY]): row["count_all"] for row in counts.to_pylist()}
    services = _top_services(unused, counts_by_target, services_per_target)
    unused_by_target, used_by_target = _namespaces_by_target(newly_unused), _namespaces_by_target(newly_used)
    below = _accounts_below(targets)
    findings = [
        TargetFindings(
            target_path=path,
            target_type=targets[path, policy]["target_type_one"],
            target_id=targets[path, policy]["target_id_one"],
            target_name=targets[path, policy]["target_name_one"],
            policy_id=policy or None,
            unused_count=counts_by_target.get((path, policy), 0),
            unused=tuple(services.get((path, policy), ())),
            newly_unused=tuple(unused_by_target.get((path, policy), ())),
            newly_used=tuple(used_by_target.get((path, policy), ())),
            allowed_count=targets[path, policy]["count_all"],
            accounts_below=below[targets[path, policy]["target_id_one"]],
        )
        # A target in use everywhere is still a finding when something became used again there.
        for path, policy in counts_by_target.keys() | used_by_target.keys()
    ]
    findings.sort(key=lambda target: (-target.unused_count, target.target_path, target.policy_id or ""))
    return tuple(findings)


def _top_services(
    unused: pa.Table, counts: Mapping[tuple[str, str], int], limit: int | None
) -> dict[tuple[str, str], list[UnusedService]]:
    """The first `limit` services of each target (all if None): never used first, then least recently used.

    `counts` must be in key order: sorted by key, each target's rows are one run of `order`, so
    the positions to keep follow from the counts alone, one step per target rather than per row.
    """
    if limit == 0:  # none wanted: spare the sort of every unused row
        return {}
    order = pc.sort_indices(
        unused,
        sort_keys=[
            ("target_path", "ascending", "at_end"),
            (_POLICY, "ascending", "at_end"),
            ("last_authenticated_time", "ascending", "at_start"),
            ("service_namespace", "ascending", "at_end"),
        ],
    )
    kept: list[int] = []
    start = 0
    for count in counts.values():
        kept.extend(range(start, start + (count if limit is None else min(count, limit))))
        start += count
    services: dict[tuple[str, str], list[UnusedService]] = {key: [] for key in counts}
    for row in unused.take(pc.take(order, pa.array(kept, pa.int64()))).to_pylist():
        services[row["target_path"], row[_POLICY]].append(
            UnusedService(row["service_namespace"], row["service_name"], row["last_authenticated_time"])
        )
    return services


def _namespaces_by_target(rows: pa.Table) -> dict[tuple[str, str], list[str]]:
    by_target: dict[tuple[str, str], list[str]] = {}
    for row in rows.sort_by("service_namespace").to_pylist():
        by_target.setdefault((row["target_path"], row[_POLICY]), []).append(row["service_namespace"])
    return by_target


def _problem_jobs(jobs: pa.Table) -> tuple[ProblemJob, ...]:
    settled = pa.array([JobStatus.COMPLETED.value, JobStatus.DEFERRED.value], pa.string())
    problems = jobs.select(JOB_COLUMNS).filter(pc.invert(pc.is_in(jobs["job_status"], value_set=settled)))
    problems = problems.sort_by([("target_path", "ascending", "at_end"), ("policy_id", "ascending", "at_start")])
    return tuple(
        ProblemJob(
            target_path=row["target_path"],
            target_type=row["target_type"],
            target_id=row["target_id"],
            target_name=row["target_name"],
            policy_id=row["policy_id"],
            status=row["job_status"],
            error_code=row["error_code"],
            error_message=row["error_message"],
        )
        for row in problems.to_pylist()
    )


def _stale(jobs: pa.Table, stale_after_days: int | None) -> tuple[StaleTarget, ...]:
    """COMPLETED records older than the cadence, and DEFERRED ones (never collected); oldest first."""
    if stale_after_days is None:
        return ()
    status = jobs["job_status"]
    old = pc.and_(pc.equal(status, JobStatus.COMPLETED.value), pc.greater(jobs["data_age_days"], stale_after_days))
    rows = jobs.filter(pc.or_(old, pc.equal(status, JobStatus.DEFERRED.value))).to_pylist()
    found = [
        StaleTarget(
            target_path=row["target_path"],
            target_type=row["target_type"],
            target_id=row["target_id"],
            target_name=row["target_name"],
            policy_id=row["policy_id"],
            data_age_days=None if row["job_status"] == JobStatus.DEFERRED.value else row["data_age_days"],
            collected_at=None if row["job_status"] == JobStatus.DEFERRED.value else row["collected_at"],
        )
        for row in rows
    ]
    never = 1 << 30
    found.sort(
        key=lambda t: (-(never if t.data_age_days is None else t.data_age_days), t.target_path, t.policy_id or "")
    )
    return tuple(found)
