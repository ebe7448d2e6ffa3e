"""One target's recommendation from its latest report, its scope and yesterday's recommendation (pure).

The rule, per root and OU (per account when asked):
- The evidence is the target's latest complete report in the day's snapshot. IAM's last use of a
  service covers every account in scope, so a service used anywhere in it within the window is used.
  Days unused are counted up to the report's own time, not today: a report two days old says nothing
  about the last two days.
- Newness is not disuse. The evidence starts when the earliest account in scope joined the
  organization (at most IAM's 400 days back). A scope whose every account joined within the window,
  or with no account at all, gets no proposal (`NO_EVIDENCE`); proposals start once the earliest has
  been in for the window. An OU with some recent accounts is judged by the older ones (the recent are
  counted in the evidence for the reviewer).
- A target without a current report today (missing, failed today, or older than its cadence) gets no
  new proposal: the previous one is `HELD` as it was, and the reason says why.
- Never denied: services used within the window, `guardrail_never_deny`, an unexpired exception on
  the target or above it (an expired one is dropped and listed), and services an attached SCP on the
  target or above it already denies.
- The rest is packed into as few SCPs of `scp_max_chars` as fit, in namespace order, never more than
  the attachment slots left; the ones that do not fit are listed as left out (`NO_SLOT` when none fit).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from lambdas.collector.guardrails import scp_text
from lambdas.collector.guardrails.existing import denied
from lambdas.collector.guardrails.recommendation import (
    Attachment,
    Change,
    ExpiredException,
    KeptService,
    ProposedScp,
    Recommendation,
    ReportEvidence,
    ScopeEvidence,
    ServiceEvidence,
    Slots,
    Status,
    TargetRef,
)
from lambdas.collector.models import TargetType
from lambdas.collector.organization import OWN_POLICY_PREFIX, AttachedScp, Manager, Node, earliest
from lambdas.collector.settings import GuardrailException, Guardrails

TRACKING_DAYS = 400  # IAM's last-use tracking period


@dataclass(frozen=True)
class ServiceUse:
    namespace: str
    name: str
    last_used: datetime | None


@dataclass(frozen=True)
class Report:
    """The target's latest complete report as the day's snapshot holds it."""

    collected_at: datetime
    age_days: int
    services: tuple[ServiceUse, ...]


@dataclass(frozen=True)
class Day:
    dt: date
    run_id: str
    organization_id: str


@dataclass(frozen=True)
class Inputs:
    node: Node
    report: Report | None
    failed_today: str | None  # the code of this run's job for the target, if it did not complete
    accounts: Sequence[Node]  # the member accounts in scope
    inherited: Sequence[AttachedScp]  # SCPs attached above the node (their denies bind it too)
    previous: Collection[str]  # yesterday's proposed namespaces
    cadence_days: int  # the report is current while no older than this (0: collected every run)


def window_days(node: Node, rules: Guardrails) -> int:
    return rules.guardrail_root_window_days if node.type is TargetType.ROOT else rules.guardrail_window_days


def _covers(exception: GuardrailException, node: Node) -> bool:
    return exception.target_id == node.id or exception.target_id in node.ancestors


def _scope(inputs: Inputs, window: int, at: datetime) -> ScopeEvidence:
    first = earliest(list(inputs.accounts))
    days = min(TRACKING_DAYS, max(0, (at - first).days)) if first else 0
    recent = sum(1 for a in inputs.accounts if a.joined is not None and (at - a.joined).days < window)
    return ScopeEvidence(
        accounts=len(inputs.accounts), joined_within_window=recent, earliest_joined=first, evidence_days=days
    )


def _slots(node: Node, rules: Guardrails) -> Slots:
    attached = node.scps or ()
    others = sum(scp.managed_by is not Manager.COLLECTOR for scp in attached)
    return Slots(
        attached=[Attachment(id=s.id, name=s.name, managed_by=s.managed_by.value) for s in attached],
        max=rules.scp_max_per_target,
        left=max(0, rules.scp_max_per_target - others),
    )


def _not_current(inputs: Inputs) -> str | None:
    report = inputs.report
    if report is None:
        return "no report of this target in the day's snapshot"
    if inputs.failed_today:
        return f"today's report job ended {inputs.failed_today}: the report is {report.age_days} days old"
    if report.age_days > inputs.cadence_days:
        return f"the report is {report.age_days} days old, older than its cadence of {inputs.cadence_days}"
    return None


def _policies(node: Node, groups: list[list[str]], window: int, break_glass: Sequence[str]) -> list[ProposedScp]:
    out = []
    for n, group in enumerate(groups, start=1):
        text = scp_text.render(group, break_glass)
        out.append(
            ProposedScp(
                name=f"{OWN_POLICY_PREFIX}{node.id}-{n}",
                description=f"Denies services unused for {window}+ days in {node.id} (org-access-report, {n} of "
                f"{len(groups)})",
                chars=scp_text.size(text),
                services=len(group),
                content=text,
            )
        )
    return out


def recommend(inputs: Inputs, rules: Guardrails, day: Day) -> Recommendation:
    node, report = inputs.node, inputs.report
    window = window_days(node, rules)
    at = report.collected_at if report else datetime.combine(day.dt, time(), tzinfo=UTC)
    base = Recommendation(
        dt=day.dt.isoformat(),
        run_id=day.run_id,
        organization_id=day.organization_id,
        target=TargetRef(id=node.id, type=node.type, name=node.name, path=node.path),
        status=Status.NOTHING_TO_DENY,
        window_days=window,
        report=ReportEvidence(
            collected_at=report.collected_at,
            age_days=report.age_days,
            services_allowed=len(report.services),
            failed_today=inputs.failed_today,
        )
        if report
        else None,
        scope=_scope(inputs, window, at),
        slots=_slots(node, rules),
    )
    uses = {s.namespace: s for s in report.services} if report else {}
    held = _not_current(inputs)
    if held is not None:
        return _held(base, inputs, uses, held, rules)
    assert report is not None
    if not inputs.accounts:
        return _no_evidence(base, inputs, uses, "no member account in scope: nothing shows what it needs")
    if base.scope.evidence_days < window:
        first = base.scope.earliest_joined
        assert first is not None
        return _no_evidence(
            base,
            inputs,
            uses,
            f"every account in scope joined within the {window}-day window (the earliest on {first.date()}): "
            f"{base.scope.evidence_days} days of disuse are no evidence yet",
        )
    return _propose(base, inputs, report, uses, rules, window, day.dt)


def _days_unused(use: ServiceUse, at: datetime, evidence_days: int) -> int:
    return evidence_days if use.last_used is None else max(0, (at - use.last_used).days)


def _propose(  # noqa: PLR0917 (the one caller passes what `recommend` has worked out, in order)
    base: Recommendation,
    inputs: Inputs,
    report: Report,
    uses: Mapping[str, ServiceUse],
    rules: Guardrails,
    window: int,
    today: date,
) -> Recommendation:
    node = inputs.node
    at, evidence = report.collected_at, base.scope.evidence_days
    never = set(rules.guardrail_never_deny)
    covering = [e for e in rules.guardrail_exceptions if _covers(e, node)]
    active = {ns: e for e in covering if e.expires >= today for ns in e.services}
    expired = [
        ExpiredException(target_id=e.target_id, services=sorted(e.services), expired=e.expires, reason=e.reason)
        for e in covering
        if e.expires < today
    ]
    patterns = [p for scp in (*inputs.inherited, *(node.scps or ())) for p in scp.denies]
    already = denied(patterns, uses)
    kept: list[KeptService] = []
    used_recently: dict[str, ServiceUse] = {}
    candidates: list[str] = []
    for ns in sorted(uses):
        use = uses[ns]
        if use.last_used is not None and (at - use.last_used).days < window:
            used_recently[ns] = use
        elif ns in never:
            kept.append(KeptService(namespace=ns, why="never_deny"))
        elif ns in active:
            kept.append(KeptService(namespace=ns, why=f"exception until {active[ns].expires}: {active[ns].reason}"))
        elif ns not in already:
            candidates.append(ns)
    groups = scp_text.pack(candidates, rules.guardrail_break_glass_arns, rules.scp_max_chars)
    assert base.slots is not None
    fitted, spilled = groups[: base.slots.left], groups[base.slots.left :]
    policies = _policies(node, fitted, window, rules.guardrail_break_glass_arns)
    proposed = {ns: policy.name for policy, group in zip(policies, fitted, strict=True) for ns in group}
    left_out = sorted(ns for group in spilled for ns in group)
    services = [
        ServiceEvidence(
            namespace=ns,
            name=uses[ns].name,
            last_used=uses[ns].last_used,
            days_unused=_days_unused(uses[ns], at, evidence),
            change=Change.UNCHANGED if ns in inputs.previous else Change.NEW,
            policy=policy,
        )
        for ns, policy in sorted(proposed.items())
    ]

    def why_not(ns: str) -> tuple[Change, str]:
        if ns not in uses or ns in already:
            return Change.DONE, "denied now: no longer allowed here, or an attached SCP denies it"
        if ns in used_recently:
            last = used_recently[ns].last_used
            return Change.WITHDRAWN, f"used again: last used {last.date() if last else '?'}"
        if ns in left_out:
            return Change.WITHDRAWN, "no attachment slot left"
        return Change.WITHDRAWN, "kept: never_deny or an exception"

    withdrawn = _withdrawn(inputs.previous, proposed, uses, why_not)
    status = Status.PROPOSED if policies else Status.NO_SLOT if left_out else Status.NOTHING_TO_DENY
    return base.model_copy(
        update={
            "status": status,
            "reason": f"{len(left_out)} services left out: no attachment slot left" if left_out else None,
            "policies": policies,
            "services": services,
            "withdrawn": withdrawn,
            "used_within_window": len(used_recently),
            "kept": kept,
            "expired_exceptions": expired,
            "already_denied": sorted(already),
            "left_out": left_out,
        }
    )


def _withdrawn(
    previous: Collection[str],
    proposed: Mapping[str, str],
    uses: Mapping[str, ServiceUse],
    why_not: Callable[[str], tuple[Change, str]],
) -> list[ServiceEvidence]:
    out = []
    for ns in sorted(set(previous) - set(proposed)):
        change, reason = why_not(ns)
        use = uses.get(ns)
        out.append(
            ServiceEvidence(
                namespace=ns,
                name=use.name if use else ns,
                last_used=use.last_used if use else None,
                days_unused=None,
                change=change,
                reason=reason,
            )
        )
    return out


def _no_evidence(base: Recommendation, inputs: Inputs, uses: Mapping[str, ServiceUse], reason: str) -> Recommendation:
    withdrawn = _withdrawn(inputs.previous, {}, uses, lambda ns: (Change.WITHDRAWN, "no evidence: " + reason))
    return base.model_copy(update={"status": Status.NO_EVIDENCE, "reason": reason, "withdrawn": withdrawn})


def _held(
    base: Recommendation, inputs: Inputs, uses: Mapping[str, ServiceUse], reason: str, rules: Guardrails
) -> Recommendation:
    """Yesterday's proposal, as it was: nothing new is proposed without a current report."""
    node = inputs.node
    window = base.window_days
    groups = scp_text.pack(sorted(inputs.previous), rules.guardrail_break_glass_arns, rules.scp_max_chars)
    policies = _policies(node, groups, window, rules.guardrail_break_glass_arns)
    services = [
        ServiceEvidence(
            namespace=ns,
            name=uses[ns].name if ns in uses else ns,
            last_used=uses[ns].last_used if ns in uses else None,
            days_unused=None,
            change=Change.UNCHANGED,
            policy=policy.name,
        )
        for policy, group in zip(policies, groups, strict=True)
        for ns in group
    ]
    return base.model_copy(
        update={
            "status": Status.HELD,
            "reason": f"{reason}: no new proposal today",
            "policies": policies,
            "services": services,
        }
    )
