"""The run's collection plan: which of the selected targets this run collects, and which it carries forward.

Root and every OU are collected every run. Member accounts are collected on a rolling cadence
(`account_refresh_days`), owed ones first:
1. NEW: accounts never collected (not in the latest snapshot);
2. OU_CHANGED: accounts under an OU whose report changed between its two latest snapshots and whose
   own data predates that OU report. A report changed when its set of services *used* in the
   tracking period differs (a service newly used or newly unused in the OU's subtree; a swap of one
   for another counts, though it leaves both counts equal) or its set of services *allowed* does (an
   SCP change). This reads the *previous* runs' OU reports: today's are not collected yet when the
   plan is made;
3. DUE: accounts whose data is `account_refresh_days - 1` days old or more (due a day early, so that
   a deferral by the budget still leaves nothing older than the cadence), stalest first;
4. AHEAD: not-due accounts, stalest first, until the run has collected its fair share of accounts,
   ceil(accounts / (account_refresh_days - 1)) (all, for a cadence of one or two days). Otherwise
   every account collected on day one comes due on the same later day, and that day carries the
   whole organization. Being due a day early, an account is collected at least every
   `account_refresh_days - 1` days: a share of accounts / `account_refresh_days` would fall short,
   and the due accounts would keep coming back in one lump. With this share the daily load settles,
   within one cadence, on the share itself.
The rest is NOT_DUE. A run also has a capacity: with at most `iam_max_jobs_in_progress` jobs at a
time, a report of about `poll_initial_wait_seconds`, and two IAM calls per target at
`iam_calls_per_second`, `run_budget_seconds` fits so many targets; root and OUs always go in, the
owed accounts that do not fit are OVER_BUDGET and, being the stalest (or new), next run's first work.
The fair share never goes beyond the capacity, and AHEAD never displaces an owed account. A run is
never empty: an accounts-only run collects at least one account.

Everything is read from the data bucket: the latest `report_jobs` partition (with carry-forward
each day's partition holds every target with its own `collected_at`) and the one before it, and
four columns of those two days' `access_details`, of which only the OUs' rows are kept (and only
when an OU has a new report): no other AWS service is involved.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from lambdas.collector.models import JobStatus, Target, TargetType
from lambdas.collector.names import Layout
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS
from lambdas.collector.store.storage import list_keys, list_partitions, read_tables

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Key = tuple[str, str | None]
# IAM calls a target costs at least: one Generate, one Get.
CALLS_PER_TARGET = 2
_JOB_COLUMNS = [
    "collected_at",
    "target_path",
    "target_type",
    "target_id",
    "policy_id",
    "job_id",
    "job_status",
    "job_creation_date",
    "job_completion_date",
]
_SERVICE_COLUMNS = ["target_type", "job_id", "service_namespace", "last_authenticated_time"]
_OU = TargetType.ORGANIZATIONAL_UNIT.value


class Reason(StrEnum):
    """Why the plan collects a target this run, or defers it."""

    ROOT_OR_OU = "ROOT_OR_OU"
    NEW = "NEW"
    OU_CHANGED = "OU_CHANGED"
    DUE = "DUE"
    AHEAD = "AHEAD"  # collected ahead of its due day to spread the load
    NOT_DUE = "NOT_DUE"
    OVER_BUDGET = "OVER_BUDGET"

    @property
    def planned(self) -> bool:
        return self not in (Reason.NOT_DUE, Reason.OVER_BUDGET)


@dataclass(frozen=True)
class Decision:
    target: Target
    reason: Reason


@dataclass(frozen=True)
class History:
    """What the latest snapshots say: each target's latest completed report (when it was collected,
    and how long IAM took to make it), and the OUs whose report changed between their two latest
    snapshots (OU id → when the latest was collected)."""

    collected_at: dict[Key, datetime]
    changed_ous: dict[str, datetime]
    report_seconds: dict[Key, float] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> History:
        return cls({}, {})

    def with_report_seconds(self, targets: Iterable[Target]) -> list[Target]:
        """The targets, each with how long its latest report took (`expected_seconds`) where known."""
        return [
            target.model_copy(update={"expected_seconds": self.report_seconds[target.key]})
            if target.key in self.report_seconds
            else target
            for target in targets
        ]


@dataclass(frozen=True)
class Plan:
    decisions: list[Decision]

    @property
    def planned(self) -> list[Target]:
        return [d.target for d in self.decisions if d.reason.planned]

    def counts(self) -> dict[str, dict[str, int]]:
        """Planned and deferred targets by reason (what the log says)."""
        out: dict[str, dict[str, int]] = {"planned": {}, "deferred": {}}
        for reason, n in sorted(Counter(d.reason for d in self.decisions).items()):
            out["planned" if reason.planned else "deferred"][reason.value] = n
        return out

    def as_json(self) -> list[dict[str, Any]]:
        return [{"target": d.target.model_dump(mode="json"), "reason": d.reason.value} for d in self.decisions]

    @classmethod
    def from_json(cls, items: list[dict[str, Any]]) -> Plan:
        return cls([Decision(Target.model_validate(i["target"]), Reason(i["reason"])) for i in items])


def capacity(budget_seconds: float, report_seconds: float, jobs_in_progress: int, calls_per_second: float) -> int:
    """Targets a run can collect in its budget: one report's time per admitted job, or the call rate."""
    per_target = max(report_seconds / jobs_in_progress, CALLS_PER_TARGET / calls_per_second)
    return math.floor(budget_seconds / per_target)


def fair_share(accounts: int, refresh_days: int) -> int:
    """Accounts a run collects so that the load is even: an account is due a day early, so each one
    comes round every `refresh_days - 1` days (every day for a cadence of one or two)."""
    return math.ceil(accounts / max(1, refresh_days - 1))


def make_plan(targets: list[Target], history: History, *, today: date, refresh_days: int, capacity: int) -> Plan:
    """Every selected target with its reason (see the module docstring), in the targets' order."""
    always = [t for t in targets if t.type is not TargetType.ACCOUNT]
    accounts = [t for t in targets if t.type is TargetType.ACCOUNT]
    ranked = sorted((_rank(t, history, today, refresh_days) for t in accounts), key=lambda item: item[0])
    owed = [(target, reason) for _, target, reason in ranked if reason is not Reason.NOT_DUE]
    not_due = [target for _, target, reason in ranked if reason is Reason.NOT_DUE]
    room = max(0 if always else 1, capacity - len(always))  # an accounts-only run is never empty
    ahead = max(0, min(room, fair_share(len(accounts), refresh_days)) - len(owed))
    reasons: dict[Key, Reason] = {target.key: reason for target, reason in owed[:room]}
    reasons |= {target.key: Reason.OVER_BUDGET for target, _ in owed[room:]}
    reasons |= {target.key: Reason.AHEAD for target in not_due[:ahead]}
    reasons |= {target.key: Reason.NOT_DUE for target in not_due[ahead:]}
    return Plan([Decision(t, reasons[t.key] if t.type is TargetType.ACCOUNT else Reason.ROOT_OR_OU) for t in targets])


def _rank(
    target: Target, history: History, today: date, refresh_days: int
) -> tuple[tuple[int, float, str, str], Target, Reason]:
    """The account's reason, and its place: owed before not due (NEW, OU_CHANGED, DUE, the rest),
    stalest first within, then by path and policy so that ties always fall the same way."""
    last = history.collected_at.get(target.key)
    if last is None:
        priority, reason = 0, Reason.NEW
    elif any(last < history.changed_ous.get(ou, last) for ou in target.path.split("/")[2:-1]):
        priority, reason = 1, Reason.OU_CHANGED
    elif (today - last.date()).days >= refresh_days - 1:
        priority, reason = 2, Reason.DUE
    else:
        priority, reason = 3, Reason.NOT_DUE
    return (priority, last.timestamp() if last else 0.0, target.path, target.policy_id or ""), target, reason


@dataclass(frozen=True)
class ServiceSets:
    """What an OU's report says: the services its SCPs allow, and those used in the tracking period."""

    allowed: frozenset[str] = frozenset()
    used: frozenset[str] = frozenset()


def report_changed(before: ServiceSets, after: ServiceSets) -> bool:
    """A service newly used or newly unused (even one of each, which leaves the counts equal), or an
    SCP change (a service newly allowed or no longer allowed)."""
    return before.used != after.used or before.allowed != after.allowed


def service_sets(tables: Iterable[pa.Table], job_ids: set[str]) -> dict[str, ServiceSets]:
    """Each wanted OU report's services (by job id), from `access_details` tables with at least the
    `target_type`, `job_id`, `service_namespace` and `last_authenticated_time` columns. A report
    with no rows (no service allowed) is absent: its sets are empty."""
    allowed: defaultdict[str, set[str]] = defaultdict(set)
    used: defaultdict[str, set[str]] = defaultdict(set)
    wanted = pa.array(sorted(job_ids), pa.string())
    for table in tables:
        rows = table.filter(pc.and_(pc.equal(table["target_type"], _OU), pc.is_in(table["job_id"], wanted)))
        for job_id, namespace, when in zip(
            rows["job_id"].to_pylist(),
            rows["service_namespace"].to_pylist(),
            rows["last_authenticated_time"].to_pylist(),
            strict=True,
        ):
            allowed[job_id].add(namespace)
            if when is not None:
                used[job_id].add(namespace)
    return {job_id: ServiceSets(frozenset(names), frozenset(used[job_id])) for job_id, names in allowed.items()}


def read_history(s3: S3Client, bucket: str, layout: Layout, dt: str) -> History:
    """The latest `report_jobs` partition on or before `dt` (a same-day rerun reads the day's earlier
    run), and the one before it for the OUs' changes."""
    days = [day for day in list_partitions(s3, bucket, layout, REPORT_JOBS) if day <= dt][-2:]
    snapshots = [_completed(s3, bucket, layout, day) for day in days]
    if not snapshots:
        return History.empty()
    latest = snapshots[-1]
    collected = {key: record["collected_at"] for key, record in latest.items()}
    took = {
        key: round((record["job_completion_date"] - record["job_creation_date"]).total_seconds(), 2)
        for key, record in latest.items()
        if record["job_creation_date"] is not None and record["job_completion_date"] is not None
    }
    previous = snapshots[0] if len(snapshots) == 2 else {}
    # Only an OU with a new report can have changed: the same job carried forward is the same report.
    renewed = [
        (previous[key], record)
        for key, record in latest.items()
        if record["target_type"] == _OU and key in previous and record["job_id"] != previous[key]["job_id"]
    ]
    if not renewed:
        return History(collected, {}, took)
    before = _services(s3, bucket, layout, days[0], {old["job_id"] for old, _ in renewed})
    after = _services(s3, bucket, layout, days[1], {new["job_id"] for _, new in renewed})
    changed: dict[str, datetime] = {}
    for old, new in renewed:
        if report_changed(before.get(old["job_id"], ServiceSets()), after.get(new["job_id"], ServiceSets())):
            ou = new["target_id"]
            changed[ou] = max(changed.get(ou, new["collected_at"]), new["collected_at"])
    return History(collected, changed, took)


def _services(s3: S3Client, bucket: str, layout: Layout, dt: str, job_ids: set[str]) -> dict[str, ServiceSets]:
    """The wanted OU reports' services in an `access_details` partition, reading four columns only."""
    keys = [key for key in list_keys(s3, bucket, layout.partition(ACCESS_DETAILS, dt)) if key.endswith(".parquet")]
    return service_sets(read_tables(s3, bucket, keys, ACCESS_DETAILS, _SERVICE_COLUMNS), job_ids)


def _completed(s3: S3Client, bucket: str, layout: Layout, dt: str) -> dict[Key, dict[str, Any]]:
    """Each target's completed report in a `report_jobs` partition (the newest, if several)."""
    keys = [key for key in list_keys(s3, bucket, layout.partition(REPORT_JOBS, dt)) if key.endswith(".parquet")]
    out: dict[Key, dict[str, Any]] = {}
    for table in read_tables(s3, bucket, keys, REPORT_JOBS, _JOB_COLUMNS):
        done = table.filter(pc.equal(table["job_status"], JobStatus.COMPLETED.value))
        for record in done.to_pylist():
            key = (record["target_path"], record["policy_id"])
            if key not in out or out[key]["collected_at"] < record["collected_at"]:
                out[key] = record
    return out
