"""What the day's page shows, computed from the day's tables (pure): the organization at a glance, the
heatmaps, the trend, the changes since the previous snapshot, the guardrail proposals, the problem jobs."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lambdas.collector.guardrails.daily import ProposalLine
from lambdas.collector.models import JobStatus, TargetType
from lambdas.collector.notify.fixes import fix_for
from lambdas.collector.organization import Node
from lambdas.collector.report.heat import Grid, Row, days_since

# What the page reads of `access_details` (reports over all SCPs only) and of `report_jobs`.
DETAIL_COLUMNS = ["target_id", "target_type", "service_namespace", "service_name", "last_authenticated_time",
                  "collected_at"]  # fmt: skip
JOB_COLUMNS = ["run_id", "target_id", "target_type", "target_name", "target_path", "job_status", "error_code",
               "carried_forward", "data_age_days", "policy_id"]  # fmt: skip
MAX_LISTED = 50  # changes, proposals and problem groups listed on the page; the rest are counted


@dataclass(frozen=True)
class Glance:
    organization_id: str
    dt: str
    run_id: str
    collected_at: datetime
    targets: dict[str, int]  # by type
    allowed: int  # services the root's SCPs allow (else: allowed anywhere)
    used: int  # of those, used within the window somewhere
    never_used: int
    window_days: int
    jobs_not_completed: int
    carried: int  # targets whose data was carried from an earlier run
    oldest_days: int


@dataclass(frozen=True)
class Series:
    label: str
    points: tuple[tuple[date, int], ...]


@dataclass(frozen=True)
class Change:
    label: str
    target_id: str
    newly_unused: tuple[str, ...]
    newly_used: tuple[str, ...]


@dataclass(frozen=True)
class ProblemGroup:
    code: str
    count: int
    fix: str | None
    examples: tuple[str, ...]


@dataclass(frozen=True)
class PageView:
    glance: Glance
    ous: Grid
    accounts: Grid | None
    trend: tuple[Series, ...]
    changes: tuple[Change, ...]
    compared_with: str | None  # the previous snapshot's dt
    proposals: tuple[ProposalLine, ...]
    problems: tuple[ProblemGroup, ...]


def tree_rows(nodes: Sequence[Node], with_data: set[str]) -> tuple[list[Row], list[Row]]:
    """Roots and OUs in tree order (parents before children, siblings by name), and the accounts grouped
    under their parents in the same order; only entities with data in the day's snapshot."""
    by_id = {n.id: n for n in nodes}

    def sort_key(node: Node) -> tuple[str, ...]:
        chain = [*node.ancestors, node.id]
        return tuple(f"{(by_id[i].name or i).lower()}\x00{i}" if i in by_id else i for i in chain)

    ordered = sorted((n for n in nodes if n.id in with_data), key=sort_key)
    groups = [
        Row(n.id, n.name or n.id, n.type.value, len(n.ancestors), None)
        for n in ordered
        if n.type is not TargetType.ACCOUNT
    ]
    accounts = [
        Row(n.id, n.name or n.id, n.type.value, len(n.ancestors), n.ancestors[-1] if n.ancestors else None)
        for n in ordered
        if n.type is TargetType.ACCOUNT
    ]
    return groups, accounts


def glance(
    details: pa.Table, jobs: pa.Table, *, organization_id: str, dt: str, run_id: str, at: datetime, window: int
) -> Glance:
    all_scps = jobs.filter(pc.is_null(jobs["policy_id"])) if jobs.num_rows else jobs
    rows = all_scps.to_pylist()
    roots = details.filter(pc.equal(details["target_type"], TargetType.ROOT.value))
    basis = roots if roots.num_rows else details
    days = days_since(basis).to_pylist()
    namespaces = basis["service_namespace"].to_pylist()
    used = {ns for ns, d in zip(namespaces, days, strict=True) if d is not None and d <= window}
    ever = {ns for ns, d in zip(namespaces, days, strict=True) if d is not None}
    return Glance(
        organization_id=organization_id,
        dt=dt,
        run_id=run_id,
        collected_at=at,
        targets=dict(Counter(r["target_type"] for r in rows)),
        allowed=len(set(namespaces)),
        used=len(used),
        never_used=len(set(namespaces) - ever),
        window_days=window,
        jobs_not_completed=sum(r["job_status"] != JobStatus.COMPLETED.value for r in rows if r["run_id"] == run_id),
        carried=sum(bool(r["carried_forward"]) for r in rows),
        oldest_days=max((r["data_age_days"] or 0 for r in rows), default=0),
    )


def _unused_sets(table: pa.Table, window: int) -> dict[str, tuple[set[str], set[str]]]:
    """Per target: (used within the window, not used within it)."""
    days = days_since(table).to_pylist()
    out: dict[str, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    for target, ns, d in zip(table["target_id"].to_pylist(), table["service_namespace"].to_pylist(), days, strict=True):
        out[target][0 if d is not None and d <= window else 1].add(ns)
    return out


def changes(current: pa.Table, previous: pa.Table | None, labels: Mapping[str, str], window: int) -> list[Change]:
    """Roots and OUs whose services went quiet (used before, unused now) or came into use since the
    previous snapshot; most changes first."""
    if previous is None:
        return []
    now, before = _unused_sets(current, window), _unused_sets(previous, window)
    out = []
    for target, (used, unused) in now.items():
        used_before, unused_before = before.get(target, (set(), set()))
        newly_unused, newly_used = unused & used_before, used & unused_before
        if newly_unused or newly_used:
            out.append(
                Change(labels.get(target, target), target, tuple(sorted(newly_unused)), tuple(sorted(newly_used)))
            )
    return sorted(out, key=lambda c: (-len(c.newly_unused) - len(c.newly_used), c.label))


def problems(jobs: pa.Table, run_id: str, reporter_role: str | None) -> list[ProblemGroup]:
    """This run's jobs that did not complete, grouped by error code, with the fix; largest group first."""
    failed: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in jobs.to_pylist():
        if row["run_id"] == run_id and row["job_status"] not in (JobStatus.COMPLETED.value, JobStatus.DEFERRED.value):
            failed[row["error_code"] or row["job_status"]].append(row)
    return sorted(
        (
            ProblemGroup(
                code=code,
                count=len(rows),
                fix=fix_for(code, reporter_role),
                examples=tuple(sorted(r["target_name"] or r["target_id"] for r in rows)[:5]),
            )
            for code, rows in failed.items()
        ),
        key=lambda g: (-g.count, g.code),
    )


def trend(history: Iterable[Mapping[str, Any]], labels: Mapping[str, str], top_level: Sequence[str]) -> list[Series]:
    """Unused services per day for the root and each top-level OU (`top_level`, the root first), from
    `unused_summary` rows; the OUs with the most unused on the latest day first."""
    points: dict[str, dict[date, int]] = defaultdict(dict)
    wanted = set(top_level)
    for row in history:
        if row["target_id"] in wanted:
            points[row["target_id"]][date.fromisoformat(row["dt"])] = row["services_unused"]
    series = {t: Series(labels.get(t, t), tuple(sorted(p.items()))) for t, p in points.items()}
    root, *ous = [t for t in top_level if t in series] or [""]
    ordered = sorted((series[t] for t in ous), key=lambda s: (-s.points[-1][1], s.label))
    return ([series[root]] if root in series else []) + ordered


def summary_rows(details: pa.Table, rows: Sequence[Row], window: int) -> list[dict[str, Any]]:
    """The day's `unused_summary` counts of each root and OU (the run's identity columns added by the caller)."""
    wanted = {row.id for row in rows}
    days = days_since(details).to_pylist()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for target, d in zip(details["target_id"].to_pylist(), days, strict=True):
        if target in wanted:
            counted = counts[target]
            counted["allowed"] += 1
            counted["used" if d is not None and d <= window else "unused"] += 1
            counted["never"] += d is None
    return [
        {
            "target_id": row.id,
            "services_allowed": counts[row.id]["allowed"],
            "services_used": counts[row.id]["used"],
            "services_unused": counts[row.id]["unused"],
            "services_never_used": counts[row.id]["never"],
        }
        for row in rows
    ]


def since(day: str, days: int) -> str:
    return (date.fromisoformat(day) - timedelta(days=days)).isoformat()
