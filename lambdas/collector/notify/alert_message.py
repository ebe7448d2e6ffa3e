"""The alert as a person reads it in an email: one SNS message per run, within SNS's limits.

SNS counts the subject, the body and every attribute's name, type and value against 262,144 bytes
(UTF-8). The body is built line by line against that budget, keeping room for its closing lines,
so an organization of any size yields a message SNS accepts: what does not fit becomes "and N more".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, TypeAlias

from lambdas.collector.guardrails.daily import ProposalLine
from lambdas.collector.insight.unused import Findings, ProblemJob, StaleTarget, TargetFindings, UnusedService
from lambdas.collector.notify.fixes import fix_for

if TYPE_CHECKING:  # the boto3 stubs are a development dependency, never bundled
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

SNS_MAX_BYTES = 262_144
SUBJECT_MAX_CHARS = 99  # SNS: "less than 100 characters"
# Room kept for the "and N more" lines that may still follow: at most three (jobs, services, targets).
_CLOSING_ROOM = 3 * 100
_ERROR_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

# boto3's `MessageAttributes` of Publish (quoted: the stubs exist for the type checker only).
MessageAttributes: TypeAlias = "dict[str, MessageAttributeValueTypeDef]"


class Severity(StrEnum):
    CRITICAL = "CRITICAL"  # report jobs did not complete: the snapshot misses targets
    WARNING = "WARNING"  # services became unused since the previous snapshot, or data is older than the cadence
    NOTICE = "NOTICE"  # services unused, nothing new
    INFO = "INFO"  # a summary with nothing to report


@dataclass(frozen=True)
class AlertMessage:
    subject: str
    body: str
    attributes: MessageAttributes
    severity: Severity

    @property
    def size_bytes(self) -> int:
        """The size SNS checks against its limit."""
        attributes = sum(
            len(name.encode()) + len(attribute["DataType"].encode()) + len(attribute.get("StringValue", "").encode())
            for name, attribute in self.attributes.items()
        )
        return len(self.subject.encode()) + len(self.body.encode()) + attributes


def severity_of(findings: Findings) -> Severity:
    if findings.problem_jobs:
        return Severity.CRITICAL
    if findings.newly_unused_services or findings.stale:
        return Severity.WARNING
    if findings.unused_services:
        return Severity.NOTICE
    return Severity.INFO


def should_publish(findings: Findings, *, min_unused: int, always_send_summary: bool) -> bool:
    """Problem jobs, newly unused services and stale data always alert; unused services once there are
    `min_unused`."""
    return (
        always_send_summary
        or findings.problem_jobs > 0
        or bool(findings.stale)
        or findings.newly_unused_services > 0
        or findings.unused_services >= min_unused
    )


def compose(
    findings: Findings,
    *,
    organization_id: str,
    dt: str,
    run_id: str,
    max_targets: int,
    top_services: int,
    reporter_role: str | None = None,
    guardrails: Guardrails | None = None,
    max_bytes: int = SNS_MAX_BYTES,
) -> AlertMessage:
    """Subject, body and attributes of the run's alert, at most `max_bytes` in all.

    The body lists problem jobs, each with the fix for its error code (naming `reporter_role`, the
    role the run's report calls went through, where the fix is to it), then targets (most unused
    first), each with its first `top_services` services; at most `max_targets` of each, fewer when
    the byte budget runs out ("and N more").
    """
    severity = severity_of(findings)
    subject = _subject(findings, organization_id, dt)
    attributes = _attributes(findings, severity, organization_id, dt)
    footer = _footer(findings, dt, run_id)
    # The attributes' and subject's bytes come off the body's budget, and so does the footer, written last.
    head = AlertMessage(subject, footer, attributes, severity)
    body = _Body(max_bytes - head.size_bytes)
    body.add(_headline(findings, organization_id, dt, run_id))
    _add_problem_jobs(body, findings.problems, max_targets, reporter_role)
    if guardrails is not None:
        _add_guardrails(body, guardrails, max_targets)
    _add_stale(body, findings.stale, findings.stale_after_days, max_targets)
    _add_targets(body, findings, max_targets, top_services)
    return AlertMessage(subject, body.text() + footer, attributes, severity)


@dataclass(frozen=True)
class Guardrails:
    """The day's guardrail recommendations as the alert shows them: a line per target, where they are,
    or the error that stopped them."""

    lines: tuple[ProposalLine, ...] = ()
    location: str | None = None
    error: str = ""


class _Body:
    """Blocks of text appended while they fit the budget, always leaving room for the closing lines."""

    def __init__(self, budget: int) -> None:
        self.blocks: list[str] = []
        self.left = budget

    def add(self, block: str, *, closing: bool = False) -> bool:
        size = len(block.encode()) + 1  # the newline that joins it
        if size + (0 if closing else _CLOSING_ROOM) > self.left:
            return False
        self.blocks.append(block)
        self.left -= size
        return True

    def text(self) -> str:
        return "".join(f"{block}\n" for block in self.blocks)


def _subject(findings: Findings, organization_id: str, dt: str) -> str:
    parts = []
    if findings.unused_services:
        parts.append(f"{findings.unused_services} unused on {_plural(findings.targets_with_unused, 'target')}")
    if findings.newly_unused_services:
        parts.append(f"{findings.newly_unused_services} newly unused")
    if findings.problem_jobs:
        parts.append(_plural(findings.problem_jobs, "failed job"))
    if findings.stale:
        parts.append(f"{len(findings.stale)} stale")
    text = f"Org access {organization_id} {dt}: {', '.join(parts) or 'nothing to report'}"
    # SNS rejects control characters, and some mail paths mangle non-ASCII subjects.
    text = _CONTROL.sub(" ", text).encode("ascii", "replace").decode("ascii")
    return text if len(text) <= SUBJECT_MAX_CHARS else text[: SUBJECT_MAX_CHARS - 3].rstrip(" ,:") + "..."


def _attributes(findings: Findings, severity: Severity, organization_id: str, dt: str) -> MessageAttributes:
    numbers = {
        "unused_services": findings.unused_services,
        "newly_unused_services": findings.newly_unused_services,
        "problem_jobs": findings.problem_jobs,
        "targets_with_unused": findings.targets_with_unused,
    }
    return {
        "severity": {"DataType": "String", "StringValue": severity.value},
        **{name: {"DataType": "Number", "StringValue": str(value)} for name, value in numbers.items()},
        "organization_id": {"DataType": "String", "StringValue": organization_id},
        "dt": {"DataType": "String", "StringValue": dt},
    }


def _headline(findings: Findings, organization_id: str, dt: str, run_id: str) -> str:
    as_of = findings.as_of.strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"IAM Organizations access report for {organization_id}, snapshot {dt} (run {run_id}, collected {as_of}).",
        f"Services that SCPs allow but that were not used in the last {findings.unused_after_days} days:",
        "",
        f"  {findings.unused_services} unused services on {findings.targets_with_unused} of "
        f"{_plural(findings.targets_checked, 'target')}",
    ]
    if findings.compared_with_previous:
        lines.append(f"  {findings.newly_unused_services} newly unused since the previous snapshot")
    else:
        lines.append("  no previous snapshot to compare with")
    lines.append(f"  {_plural(findings.problem_jobs, 'report job')} not completed")
    if findings.stale_after_days is not None:
        lines.append(
            f"  {_plural(len(findings.stale), 'target')} with data older than {findings.stale_after_days} days"
        )
    if not findings.unused_services and not findings.problem_jobs:
        lines += ["", "Nothing to report: no unused services, and every report job completed."]
    return "\n".join(lines)


def _add_problem_jobs(body: _Body, problems: Iterable[ProblemJob], max_jobs: int, reporter_role: str | None) -> None:
    problems = list(problems)
    if not problems or not body.add(f"\nREPORT JOBS NOT COMPLETED ({len(problems)}): no fresh data for these targets"):
        return
    shown = 0
    for job in problems[:max_jobs]:
        error = ": ".join(filter(None, [job.error_code, _clean(job.error_message or "")[:_ERROR_CHARS]]))
        fix = fix_for(job.error_code, reporter_role)
        line = f"- {job.status} {_target_label(job)}\n    {job.target_path}" + (f"\n    {error}" if error else "")
        line += f"\n    fix: {fix}" if fix else ""
        if not body.add(line):
            break
        shown += 1
    if shown < len(problems):
        body.add(f"  ... and {len(problems) - shown} more jobs (see report_jobs)", closing=True)


def _add_guardrails(body: _Body, guardrails: Guardrails, max_targets: int) -> None:
    if guardrails.error:
        body.add(f"\nGUARDRAIL RECOMMENDATIONS FAILED ({_clean(guardrails.error)}): none today; the data is complete")
        return
    lines = guardrails.lines
    if not lines or not body.add(
        f"\nGUARDRAIL PROPOSALS ({len(lines)}): SCPs to review, never attached for you (README: Guardrails)\n"
        f"  {guardrails.location}"
    ):
        return
    shown = 0
    for line in lines[:max_targets]:
        name = _clean(line.target_name or line.target_id)
        if line.status == "PROPOSED":
            what = (
                f"deny {_plural(line.services, 'service')} in {_plural(line.policies, 'SCP')} "
                f"(largest {line.largest_chars:,} chars); {line.new} new, {line.withdrawn} withdrawn"
            )
        else:
            what = f"{line.status}: {_clean(line.reason or '')[:_ERROR_CHARS]}"
        if not body.add(f"- {name} ({line.target_type} {line.target_id}): {what}"):
            break
        shown += 1
    if shown < len(lines):
        body.add(f"  ... and {_plural(len(lines) - shown, 'more target')} (see scp_recommendations)", closing=True)


def _add_stale(body: _Body, stale: tuple[StaleTarget, ...], after_days: int | None, max_targets: int) -> None:
    if not stale or not body.add(
        f"\nSTALE DATA ({len(stale)}): older than {after_days} days, or never collected; oldest first"
    ):
        return
    shown = 0
    for target in stale[:max_targets]:
        age = (
            "never collected (deferred by the collection plan)"
            if target.data_age_days is None or target.collected_at is None
            else f"data {target.data_age_days} days old (collected {target.collected_at:%Y-%m-%d})"
        )
        if not body.add(f"- {_target_label(target)}: {age}"):
            break
        shown += 1
    if shown < len(stale):
        body.add(f"  ... and {_plural(len(stale) - shown, 'more stale target')}", closing=True)


def _add_targets(body: _Body, findings: Findings, max_targets: int, top_services: int) -> None:
    targets = findings.targets
    if not targets or not body.add(f"\nTARGETS WITH UNUSED SERVICES ({len(targets)}, most unused first)"):
        if targets:
            body.add(f"... and {_plural(len(targets), 'more target')} with unused services", closing=True)
        return
    shown = 0
    for target in targets[:max_targets]:
        if not body.add(_target_header(target, top_services)):
            break
        shown += 1
        listed = 0
        for service in target.unused[:top_services]:
            if not body.add(f"  - {_service_line(service, findings.as_of)}"):
                break
            listed += 1
        if listed < target.unused_count:
            body.add(f"  ... and {target.unused_count - listed} more unused services", closing=True)
    if shown < len(targets):
        body.add(f"\n... and {_plural(len(targets) - shown, 'more target')} with unused services", closing=True)


def _target_header(target: TargetFindings, top_services: int) -> str:
    lines = [
        "",
        _target_label(target),
        f"  path: {target.target_path}",
        f"  {target.unused_count} unused"
        + (f", {len(target.newly_unused)} newly unused" if target.newly_unused else ""),
    ]
    if target.newly_unused:
        newly = ", ".join(target.newly_unused[:top_services])
        more = len(target.newly_unused) - top_services
        lines.append(f"  newly unused: {newly}" + (f" and {more} more" if more > 0 else ""))
    return "\n".join(lines)


def _target_label(target: TargetFindings | ProblemJob | StaleTarget) -> str:
    name = _clean(target.target_name or target.target_id)
    policy = f"SCP {target.policy_id}" if target.policy_id else "all SCPs"
    return f"{name} ({target.target_type} {target.target_id}, {policy})"


def _service_line(service: UnusedService, as_of: datetime) -> str:
    when = service.last_authenticated_time
    if when is None:
        return f"{_clean(service.name)} ({service.namespace}): never used in 400 days"
    return f"{_clean(service.name)} ({service.namespace}): last used {when:%Y-%m-%d} ({(as_of - when).days} days ago)"


def _footer(findings: Findings, dt: str, run_id: str) -> str:
    cutoff = findings.as_of - timedelta(days=findings.unused_after_days)
    return (
        f"\n--\nDetails in Athena: tables access_details and report_jobs, partition dt = '{dt}' (run {run_id}).\n"
        f"  SELECT * FROM report_jobs WHERE dt = '{dt}' AND job_status <> 'COMPLETED';\n"
        f"  SELECT target_path, policy_id, service_namespace, last_authenticated_time FROM access_details\n"
        f"  WHERE dt = '{dt}' AND (last_authenticated_time IS NULL\n"
        f"    OR last_authenticated_time < TIMESTAMP '{cutoff:%Y-%m-%d %H:%M:%S}');\n"
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _clean(text: str) -> str:
    """One line of text: IAM error messages and names may carry newlines or control characters."""
    return " ".join(_CONTROL.sub(" ", text).split())
