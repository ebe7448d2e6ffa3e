"""The run's collection plan: which of the selected targets this run collects, and which it carries forward.

Root and every OU are collected every run. Member accounts are collected on a rolling cadence
(`account_refresh_days`), in this order:
1. accounts never collected: not in the latest snapshot;
2. accounts under an OU whose report changed between its two latest snapshots (its number of
   services allowed or of services used in the tracking period differs: a service newly used or
   newly unused in its subtree, or an SCP change) and whose own data predates that OU report. This
   reads the *previous* runs' OU reports: today's are not collected yet when the plan is made;
3. accounts whose data is `account_refresh_days - 1` days old or more (due a day early, so that a
   deferral by the budget still leaves nothing older than the cadence), stalest first.
The rest is NOT_DUE. A run also has a capacity: with at most `iam_max_jobs_in_progress` jobs at a
time, a report of about `poll_initial_wait_seconds`, and two IAM calls per target at
`iam_calls_per_second`, `run_budget_seconds` fits so many targets; root and OUs always go in, the
accounts that do not fit are OVER_BUDGET and, being the stalest (or new), next run's first work.

Everything is read from the data bucket's latest `report_jobs` partition (with carry-forward each
day's partition holds every target with its own `collected_at`) and the one before it: no other
AWS service is involved.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import pyarrow.compute as pc

from lambdas.collector.models import JobStatus, Target, TargetType
from lambdas.collector.names import Layout
from lambdas.collector.store.schema import REPORT_JOBS
from lambdas.collector.store.storage import list_keys, list_partitions, read_tables

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Key = tuple[str, str | None]
# IAM calls a target costs at least: one Generate, one Get.
CALLS_PER_TARGET = 2
_COLUMNS = [
    "collected_at",
    "target_path",
    "target_type",
    "target_id",
    "policy_id",
    "job_id",
    "job_status",
    "services_accessible",
    "services_not_accessed",
]


class Reason(StrEnum):
    """Why the plan collects a target this run, or defers it."""

    ROOT_OR_OU = "ROOT_OR_OU"
    NEW = "NEW"
    OU_CHANGED = "OU_CHANGED"
    DUE = "DUE"
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
    """What the latest snapshots say: each target's latest completed report, and the OUs whose
    report changed between their two latest snapshots (OU id → when the latest was collected)."""

    collected_at: dict[Key, datetime]
    changed_ous: dict[str, datetime]

    @classmethod
    def empty(cls) -> History:
        return cls({}, {})


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


def make_plan(targets: list[Target], history: History, *, today: date, refresh_days: int, capacity: int) -> Plan:
    """Every selected target with its reason (see the module docstring), in the targets' order."""
    always = [t for t in targets if t.type is not TargetType.ACCOUNT]
    # (priority, data's time, path, policy): new first, then changed OUs, then due; stalest first within.
    ranked: list[tuple[tuple[int, float, str, str], Target, Reason]] = []
    deferred: dict[Key, Reason] = {}
    for target in targets:
        if target.type is not TargetType.ACCOUNT:
            continue
        last = history.collected_at.get(target.key)
        if last is None:
            priority, reason = 0, Reason.NEW
        elif any(last < history.changed_ous.get(ou, last) for ou in target.path.split("/")[2:-1]):
            priority, reason = 1, Reason.OU_CHANGED
        elif (today - last.date()).days >= refresh_days - 1:
            priority, reason = 2, Reason.DUE
        elif always or ranked:
            deferred[target.key] = Reason.NOT_DUE
            continue
        else:  # an accounts-only run with nothing due yet still collects one (the first): a run is never empty
            priority, reason = 2, Reason.DUE
        ranked.append(
            ((priority, last.timestamp() if last else 0.0, target.path, target.policy_id or ""), target, reason)
        )
    ranked.sort(key=lambda item: item[0])
    room = max(0 if always else 1, capacity - len(always))
    chosen = {target.key: reason for _, target, reason in ranked[:room]}
    deferred |= {target.key: Reason.OVER_BUDGET for _, target, _ in ranked[room:]}
    return Plan(
        [
            Decision(t, Reason.ROOT_OR_OU if t.type is not TargetType.ACCOUNT else chosen.get(t.key) or deferred[t.key])
            for t in targets
        ]
    )


def read_history(s3: S3Client, bucket: str, layout: Layout, dt: str) -> History:
    """The latest `report_jobs` partition on or before `dt` (a same-day rerun reads the day's earlier
    run), and the one before it for the OUs' changes."""
    days = [day for day in list_partitions(s3, bucket, layout, REPORT_JOBS) if day <= dt][-2:]
    snapshots = [_completed(s3, bucket, layout, day) for day in days]
    if not snapshots:
        return History.empty()
    latest = snapshots[-1]
    previous = snapshots[0] if len(snapshots) == 2 else {}
    changed: dict[str, datetime] = {}
    for key, record in latest.items():
        before = previous.get(key)
        if record["target_type"] != TargetType.ORGANIZATIONAL_UNIT.value or before is None:
            continue
        counts = ("services_accessible", "services_not_accessed")
        if record["job_id"] != before["job_id"] and any(record[c] != before[c] for c in counts):
            ou = record["target_id"]
            changed[ou] = max(changed.get(ou, record["collected_at"]), record["collected_at"])
    return History({key: record["collected_at"] for key, record in latest.items()}, changed)


def _completed(s3: S3Client, bucket: str, layout: Layout, dt: str) -> dict[Key, dict[str, Any]]:
    """Each target's completed report in a `report_jobs` partition (the newest, if several)."""
    keys = [key for key in list_keys(s3, bucket, layout.partition(REPORT_JOBS, dt)) if key.endswith(".parquet")]
    out: dict[Key, dict[str, Any]] = {}
    for table in read_tables(s3, bucket, keys, REPORT_JOBS, _COLUMNS):
        done = table.filter(pc.equal(table["job_status"], JobStatus.COMPLETED.value))
        for record in done.to_pylist():
            key = (record["target_path"], record["policy_id"])
            if key not in out or out[key]["collected_at"] < record["collected_at"]:
                out[key] = record
    return out
