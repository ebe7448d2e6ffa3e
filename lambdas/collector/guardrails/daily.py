"""recommend: the day's guardrail recommendations, from the day's snapshot and the organization.

Reads the organization as discover saw it (`runs/{run}/organization.json`), the rows of the day's
`access_details` for the targets recommended on (roots and OUs; accounts when asked; reports over all
SCPs only), this run's `report_jobs` records that did not complete, and the latest earlier
`scp_recommendations` partition (what was proposed before). Writes one JSON file per target under
`recommendations/dt=…/` and the day's `scp_recommendations` partition as one Parquet object of a
fixed key, so a rerun of the day replaces it whole. Nothing is attached: a person applies a proposal.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from lambdas.collector.guardrails.recommend import TRACKING_DAYS, Day, Inputs, Report, ServiceUse, recommend
from lambdas.collector.guardrails.recommendation import Change, Recommendation, Status
from lambdas.collector.models import GuardrailSummary, JobStatus, RunContext, TargetType
from lambdas.collector.organization import Node, OrganizationSnapshot
from lambdas.collector.settings import Guardrails, GuardrailTargets
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS, SCP_RECOMMENDATIONS
from lambdas.collector.store.storage import get_json, latest_before, list_keys, put_table, read_snapshot

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_REPORT_COLUMNS = ["target_id", "service_namespace", "service_name", "last_authenticated_time"]
_JOB_COLUMNS = ["run_id", "target_id", "job_status", "error_code", "collected_at", "data_age_days"]
PROPOSED = (Change.NEW.value, Change.UNCHANGED.value)
PARQUET_NAME = "recommendations.parquet"


def _types(targets: GuardrailTargets) -> list[str]:
    types = [TargetType.ROOT, TargetType.ORGANIZATIONAL_UNIT] + (
        [TargetType.ACCOUNT] if targets.guardrail_accounts else []
    )
    return [t.value for t in types]


def _reports(jobs: pa.Table, details: pa.Table) -> dict[str, Report]:
    """Each target's latest complete report: its COMPLETED record in the day's `report_jobs` (one per
    target with data, carried or collected) with its rows, none when SCPs allow nothing there."""
    services: dict[str, list[ServiceUse]] = defaultdict(list)
    for row in details.to_pylist():
        services[row["target_id"]].append(
            ServiceUse(row["service_namespace"], row["service_name"], row["last_authenticated_time"])
        )
    return {
        row["target_id"]: Report(
            collected_at=row["collected_at"],
            age_days=row["data_age_days"],
            services=tuple(services.get(row["target_id"], ())),
        )
        for row in jobs.to_pylist()
        if row["job_status"] == JobStatus.COMPLETED.value
    }


def _failed_today(table: pa.Table, run_id: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for row in table.to_pylist():
        if row["run_id"] == run_id and row["job_status"] != JobStatus.COMPLETED.value:
            out[row["target_id"]] = row["error_code"] or row["job_status"]
    return out


def _previous(s3: S3Client, run: RunContext) -> dict[str, set[str]]:
    before = latest_before(s3, run.bucket, run.layout, SCP_RECOMMENDATIONS, run.dt)
    if before is None:
        return {}
    table = read_snapshot(
        s3, run.bucket, run.layout, SCP_RECOMMENDATIONS, before, columns=["target_id", "service_namespace", "change"]
    )
    out: dict[str, set[str]] = defaultdict(set)
    for row in table.filter(pc.is_in(table["change"], pa.array(PROPOSED))).to_pylist():
        out[row["target_id"]].add(row["service_namespace"])
    return out


def recommendations(
    run: RunContext, rules: Guardrails, targets: GuardrailTargets, s3: S3Client
) -> list[Recommendation]:
    """Every recommendation of the day (read, decided; nothing written)."""
    org = OrganizationSnapshot.model_validate(get_json(s3, run.bucket, run.layout.organization(run.run_id)))
    types = _types(targets)
    # Reports over all SCPs (policy_id null) of the recommended types only: a few rows per root and OU.
    current = read_snapshot(
        s3,
        run.bucket,
        run.layout,
        ACCESS_DETAILS,
        run.dt,
        columns=_REPORT_COLUMNS,
        filters=pc.field("target_type").isin(types) & pc.field("policy_id").is_null(),
    )
    jobs = read_snapshot(
        s3,
        run.bucket,
        run.layout,
        REPORT_JOBS,
        run.dt,
        columns=_JOB_COLUMNS,
        filters=pc.field("target_type").isin(types) & pc.field("policy_id").is_null(),
    )
    reports = _reports(jobs, current)
    failed = _failed_today(jobs, run.run_id)
    in_snapshot = set(reports) | set(jobs["target_id"].to_pylist())
    previous = _previous(s3, run)
    scopes = org.accounts_by_scope()
    day = Day(dt=date.fromisoformat(run.dt), run_id=run.run_id, organization_id=run.organization_id)
    out = []
    for node in org.nodes:
        if node.type.value not in types or node.id not in in_snapshot:
            continue
        inputs = Inputs(
            node=node,
            report=reports.get(node.id),
            failed_today=failed.get(node.id),
            accounts=scopes.get(node.id, []),
            inherited=[scp for ancestor in node.ancestors for scp in _scps(org, ancestor)],
            previous=previous.get(node.id, set()),
            # Roots and OUs are collected every run; accounts on the run's cadence (none: never stale).
            cadence_days=(run.stale_after_days or TRACKING_DAYS) if node.type is TargetType.ACCOUNT else 0,
        )
        out.append(recommend(inputs, rules, day))
    return out


def _scps(org: OrganizationSnapshot, entity_id: str) -> Iterable[Any]:
    node: Node | None = org.by_id.get(entity_id)
    return node.scps or () if node else ()


def rows(recommendation: Recommendation, run: RunContext) -> list[dict[str, Any]]:
    """The recommendation as `scp_recommendations` rows."""
    r = recommendation
    report = r.report
    chars = {policy.name: policy.chars for policy in r.policies}
    common = {
        "run_id": run.run_id,
        "collected_at": run.collected_at,
        "organization_id": run.organization_id,
        "target_path": r.target.path,
        "target_type": r.target.type.value,
        "target_id": r.target.id,
        "target_name": r.target.name,
        "status": r.status.value,
        "window_days": r.window_days,
        "accounts_in_scope": r.scope.accounts,
        "report_collected_at": report.collected_at if report else None,
        "report_age_days": report.age_days if report else None,
    }
    services = [
        {
            **common,
            "reason": s.reason or r.reason,
            "service_namespace": s.namespace,
            "service_name": s.name,
            "change": s.change.value,
            "last_authenticated_time": s.last_used,
            "days_unused": s.days_unused,
            "policy_name": s.policy,
            "policy_chars": chars.get(s.policy) if s.policy else None,
        }
        for s in (*r.services, *r.withdrawn)
    ]
    return services or [{**common, "reason": r.reason}]


def write(recommendations: list[Recommendation], run: RunContext, s3: S3Client) -> GuardrailSummary:
    """The day's JSON files (a rerun's leftovers removed) and its `scp_recommendations` partition."""
    layout, bucket = run.layout, run.bucket
    prefix = f"{layout.recommendations}dt={run.dt}/"
    written = set()
    for r in recommendations:
        key = layout.recommendation(run.dt, r.target.id)
        body = r.model_dump_json(indent=1, exclude_none=False).encode()
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        written.add(key)
    for key in list_keys(s3, bucket, prefix):
        if key not in written:
            s3.delete_object(Bucket=bucket, Key=key)
    table = pa.Table.from_pylist(
        [row for r in recommendations for row in rows(r, run)], schema=SCP_RECOMMENDATIONS.arrow_schema
    )
    put_table(s3, bucket, f"{layout.partition(SCP_RECOMMENDATIONS, run.dt)}{PARQUET_NAME}", table)
    statuses = Counter(r.status.value for r in recommendations)
    return GuardrailSummary(
        dt=run.dt,
        targets=len(recommendations),
        by_status=dict(sorted(statuses.items())),
        policies=sum(len(r.policies) for r in recommendations if r.status is Status.PROPOSED),
        services=sum(len(r.services) for r in recommendations if r.status is Status.PROPOSED),
        new=sum(r.new for r in recommendations),
        withdrawn=sum(s.change is Change.WITHDRAWN for r in recommendations for s in r.withdrawn),
        expired_exceptions=sum(len(r.expired_exceptions) for r in recommendations),
        largest_policy_chars=max((p.chars for r in recommendations for p in r.policies), default=0),
        location=f"s3://{bucket}/{prefix}",
    )


@dataclass(frozen=True)
class ProposalLine:
    """One target's recommendation as the alert lists it."""

    target_id: str
    target_type: str
    target_name: str | None
    status: str
    reason: str | None
    policies: int
    services: int
    largest_chars: int
    new: int
    withdrawn: int


def proposal_lines(s3: S3Client, run: RunContext) -> list[ProposalLine]:
    """The day's recommendations that ask for a person, proposals with the most new first; no line
    for a target with nothing to deny."""
    columns = ["target_id", "target_type", "target_name", "status", "reason", "change", "policy_name", "policy_chars"]
    table = read_snapshot(s3, run.bucket, run.layout, SCP_RECOMMENDATIONS, run.dt, columns=columns)
    by_target: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in table.to_pylist():
        by_target[row["target_id"]].append(row)
    lines = []
    for target_id, rows in by_target.items():
        first = rows[0]
        if first["status"] == Status.NOTHING_TO_DENY.value:
            continue
        changes = Counter(row["change"] for row in rows)
        reasons = [row["reason"] for row in rows if row["change"] in (None, *PROPOSED) and row["reason"]]
        lines.append(
            ProposalLine(
                target_id=target_id,
                target_type=first["target_type"],
                target_name=first["target_name"],
                status=first["status"],
                reason=reasons[0] if reasons else None,
                policies=len({row["policy_name"] for row in rows if row["policy_name"]}),
                services=changes[Change.NEW.value] + changes[Change.UNCHANGED.value],
                largest_chars=max((row["policy_chars"] or 0 for row in rows), default=0),
                new=changes[Change.NEW.value],
                withdrawn=changes[Change.WITHDRAWN.value],
            )
        )
    order = {Status.PROPOSED.value: 0, Status.NO_SLOT.value: 1, Status.HELD.value: 2}
    return sorted(lines, key=lambda line: (order.get(line.status, 3), -line.new, -line.services, line.target_id))
