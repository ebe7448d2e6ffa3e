"""The alert as a person reads it in an email: what changed, what to do, where most is unused, and
where the rest is; one SNS message per run.

It fits one screen whatever the organization's size: each section shows at most a few lines and
counts the rest ("... and N more"), and the body never exceeds MAX_LINES. SNS counts the subject,
the body and every attribute's name, type and value against 262,144 bytes (UTF-8); the body is built
against that budget too, always keeping room for its closing lines. Unused services are never
listed one by one: the report page and Athena hold them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from lambdas.collector.guardrails.daily import ProposalLine
from lambdas.collector.guardrails.recommendation import Status
from lambdas.collector.insight.unused import Findings, ProblemJob, TargetFindings
from lambdas.collector.models import JobStatus, PageOutcome
from lambdas.collector.notify.fixes import fix_for
from lambdas.collector.notify.text import (
    KIND as _KIND,
)
from lambdas.collector.notify.text import (
    clean as _clean,
)
from lambdas.collector.notify.text import (
    few as _few,
)
from lambdas.collector.notify.text import (
    key as _key,
)
from lambdas.collector.notify.text import (
    label as _label,
)
from lambdas.collector.notify.text import (
    label_of as _label_of,
)
from lambdas.collector.notify.text import (
    names as _names,
)
from lambdas.collector.notify.text import (
    plural as _plural,
)
from lambdas.collector.notify.text import (
    rank as _rank,
)
from lambdas.collector.notify.text import (
    short as _short,
)

if TYPE_CHECKING:  # the boto3 stubs are a development dependency, never bundled
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

SNS_MAX_BYTES = 262_144
SUBJECT_MAX_CHARS = 99  # SNS: "less than 100 characters"
MAX_LINES = 60  # one screen
# Lines per section before "... and N more"; with the headline and the footer they stay well under MAX_LINES.
CHANGE_LINES = 8
FAILURE_LINES = 4
PROPOSAL_LINES = 5
WHERE_LINES = 6
NAMESPACES_PER_LINE = 10
# The saved Athena queries (queries/*.sql) the footer points to for the rest.
SAVED_QUERIES = ("newly_unused", "unused_for_days_by_ou", "failed_jobs", "guardrail_proposals")
_SUBJECT_NAME_MIN = 8
_TEXT_CHARS = 200  # IAM's error messages, guardrail reasons, stage errors
_CLOSING_BYTES = 300  # room kept for the "and N more" line that may follow
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# Guardrail recommendations a person acts on: a proposal to review, or one with no SCP slot left to take it.
_ACTIONABLE = (Status.PROPOSED.value, Status.NO_SLOT.value)

# boto3's `MessageAttributes` of Publish (quoted: the stubs exist for the type checker only).
MessageAttributes: TypeAlias = "dict[str, MessageAttributeValueTypeDef]"
T = TypeVar("T")


class Severity(StrEnum):
    CRITICAL = "CRITICAL"  # report jobs did not complete: the snapshot misses targets
    WARNING = "WARNING"  # services became unused, data is older than the cadence, or a stage failed
    NOTICE = "NOTICE"  # services unused, or new guardrail proposals; nothing worse
    INFO = "INFO"  # a summary with nothing to report


@dataclass(frozen=True)
class Guardrails:
    """The day's guardrail recommendations as the alert shows them: a line per target, where they are,
    or the error that stopped them."""

    lines: tuple[ProposalLine, ...] = ()
    location: str | None = None
    error: str = ""

    @property
    def new_proposals(self) -> int:
        """Proposals with services proposed for the first time today."""
        return sum(line.status == Status.PROPOSED.value and line.new > 0 for line in self.lines)


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


def severity_of(
    findings: Findings, guardrails: Guardrails | None = None, report: PageOutcome | None = None
) -> Severity:
    if findings.problem_jobs:
        return Severity.CRITICAL
    if findings.newly_unused_services or findings.stale or _stage_errors(guardrails, report):
        return Severity.WARNING
    if findings.unused_services or (guardrails and guardrails.new_proposals):
        return Severity.NOTICE
    return Severity.INFO


def should_publish(
    findings: Findings,
    *,
    min_unused: int,
    always_send_summary: bool,
    guardrails: Guardrails | None = None,
    report: PageOutcome | None = None,
) -> bool:
    """Problem jobs, newly unused services, stale data, new guardrail proposals and a failed guardrail
    or report stage always alert; unused services once there are `min_unused`."""
    return (
        always_send_summary
        or findings.problem_jobs > 0
        or bool(findings.stale)
        or findings.newly_unused_services > 0
        or findings.unused_services >= min_unused
        or bool(guardrails and guardrails.new_proposals)
        or bool(_stage_errors(guardrails, report))
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
    report: PageOutcome | None = None,
    max_bytes: int = SNS_MAX_BYTES,
) -> AlertMessage:
    """Subject, body and attributes of the run's alert: at most MAX_LINES lines, `max_bytes` in all.

    The body leads with what changed since the previous snapshot, then what to do (failed jobs grouped
    by error code with their fix, naming `reporter_role` where the fix is to it; guardrail proposals;
    stale data), then the roots and OUs with most unused, then where the rest is. A section shows at
    most `max_targets` lines (and never more than its own cap), a line at most `top_services` namespaces.
    """
    severity = severity_of(findings, guardrails, report)
    subject = _subject(findings, guardrails, report)
    attributes = _attributes(findings, guardrails, severity, organization_id, dt)
    footer = _footer(findings, dt, run_id, guardrails, report)
    # The attributes', subject's and footer's bytes and lines come off the body's budget: the footer is written last.
    head = AlertMessage(subject, footer, attributes, severity)
    body = _Body(max_bytes - head.size_bytes, MAX_LINES - footer.count("\n"))
    for line in _headline(findings, organization_id, dt, run_id):
        body.add(line)
    _add_changes(body, findings, min(max_targets, CHANGE_LINES), min(top_services, NAMESPACES_PER_LINE))
    _add_actions(body, findings, guardrails, max_targets, reporter_role)
    _add_where(body, findings.targets, min(max_targets, WHERE_LINES))
    return AlertMessage(subject, body.text() + footer, attributes, severity)


class _Body:
    """Lines appended while they fit the byte and line budgets, always leaving room for a closing line."""

    def __init__(self, budget: int, lines: int) -> None:
        self.blocks: list[str] = []
        self.left, self.lines_left = budget, lines

    def add(self, block: str, *, closing: bool = False) -> bool:
        size, lines = len(block.encode()) + 1, block.count("\n") + 1  # with the newline that ends it
        room, room_lines = (0, 0) if closing else (_CLOSING_BYTES, 1)
        if size + room > self.left or lines + room_lines > self.lines_left:
            return False
        self.blocks.append(block)
        self.left -= size
        self.lines_left -= lines
        return True

    def items(self, things: Sequence[T], cap: int, line: Callable[[T], str], more: Callable[[int], str]) -> None:
        """A line for each of the first `cap` things that fit, then how many were left out."""
        shown = 0
        for thing in things[:cap]:
            if not self.add(line(thing)):
                break
            shown += 1
        if shown < len(things):
            self.add(more(len(things) - shown), closing=True)

    def text(self) -> str:
        return "".join(f"{block}\n" for block in self.blocks)


def _subject(findings: Findings, guardrails: Guardrails | None, report: PageOutcome | None) -> str:
    """What changed, new guardrail proposals, failures; the name of the target that changed most gives way
    first when it is too long."""
    guardrail = []
    if guardrails is not None:
        guardrail = [
            "guardrails failed" if guardrails.error else _plural(guardrails.new_proposals, "new guardrail proposal")
        ]
    if findings.all_jobs_failed:
        codes = _failure_groups(findings.problems)
        more = ", ..." if len(codes) > 1 else ""
        failed = f"All {findings.problem_jobs:,} report jobs failed ({codes[0][0]}{more})"
        # Nothing can be newly proposed without data: only a failed guardrail stage is worth the room.
        stages = ["guardrails failed"] if guardrails and guardrails.error else []
        return _fit([failed, "no access data today", *stages], droppable="no access data today")
    stale = [f"{len(findings.stale):,} stale"] if findings.stale else []
    rest = [*stale, *guardrail, _plural(findings.problem_jobs + len(_stage_errors(guardrails, report)), "failure")]
    changed = [t for t in findings.targets if t.newly_unused] or [t for t in findings.targets if t.newly_used]
    if not findings.compared_with_previous:
        return _fit([f"First snapshot: {findings.unused_services:,} unused services", *rest])
    if not changed:
        return _fit(["No change in unused services", *rest])
    what = "unused" if changed[0].newly_unused else "used"
    top = min(changed, key=lambda t: (-len(t.newly_unused or t.newly_used), _rank(t.target_type), *_key(t)))
    others = f" (+{_plural(len(changed) - 1, 'target')})" if len(changed) > 1 else ""
    change = f"{_plural(len(top.newly_unused or top.newly_used), 'service')} newly {what} in {{}} "
    change += f"{_KIND.get(top.target_type, top.target_type)}{others}"
    # The target's name gives way first; when too little of it would be left, the totals replace it.
    name, room = _ascii(top.target_name or top.target_id), SUBJECT_MAX_CHARS - len("; ".join([change, *rest])) + 2
    if room >= _SUBJECT_NAME_MIN:
        return _fit([change.replace("{}", _short(name, room, "...")), *rest])
    total = findings.newly_unused_services if what == "unused" else findings.newly_used_services
    return _fit([f"{_plural(total, 'service')} newly {what} on {_plural(len(changed), 'target')}", *rest])


def _fit(parts: list[str], droppable: str = "") -> str:
    text = _ascii("; ".join(parts))
    if len(text) > SUBJECT_MAX_CHARS and droppable in parts:
        return _fit([part for part in parts if part != droppable])
    return text if len(text) <= SUBJECT_MAX_CHARS else text[: SUBJECT_MAX_CHARS - 3].rstrip(" ,;:") + "..."


def _ascii(text: str) -> str:
    # SNS rejects control characters in a subject, and some mail paths mangle non-ASCII ones.
    return _clean(text).encode("ascii", "replace").decode("ascii")


def _attributes(
    findings: Findings, guardrails: Guardrails | None, severity: Severity, organization_id: str, dt: str
) -> MessageAttributes:
    numbers = {
        "unused_services": findings.unused_services,
        "newly_unused_services": findings.newly_unused_services,
        "newly_used_services": findings.newly_used_services,
        "problem_jobs": findings.problem_jobs,
        "targets_with_unused": findings.targets_with_unused,
        "new_guardrail_proposals": guardrails.new_proposals if guardrails else 0,
    }
    return {
        "severity": {"DataType": "String", "StringValue": severity.value},
        **{name: {"DataType": "Number", "StringValue": str(value)} for name, value in numbers.items()},
        "organization_id": {"DataType": "String", "StringValue": organization_id},
        "dt": {"DataType": "String", "StringValue": dt},
    }


def _headline(findings: Findings, organization_id: str, dt: str, run_id: str) -> list[str]:
    """At most three lines: what the snapshot is, what is unused, what changed and failed."""
    where = f"IAM access report of {organization_id}, snapshot {dt} (run {run_id}, {findings.as_of:%Y-%m-%d %H:%M} UTC)"
    if findings.all_jobs_failed:
        return [
            f"All {findings.problem_jobs:,} report jobs failed: no access data today, so nothing is judged unused "
            "or changed. The fix is under WHAT TO DO.",
            f"{where}.",
        ]
    unused = (
        f"{findings.unused_services:,} services their SCPs allow were unused for {findings.unused_after_days}+ days "
        f"on {findings.targets_with_unused:,} of {_plural(findings.targets_checked, 'target')} (allowlist left out)."
    )
    if not (findings.unused_services or findings.newly_used_services or findings.problems or findings.stale):
        return [f"{where}.", "Nothing to report: no unused services, and every report job completed."]
    compared = (
        f"Since the previous snapshot: {findings.newly_unused_services:,} newly unused, "
        f"{findings.newly_used_services:,} newly used"
        if findings.compared_with_previous
        else "No previous snapshot to compare with"
    )
    jobs = f"{_plural(findings.problem_jobs, 'report job')} did not complete" if findings.problems else ""
    stale = f"{_plural(len(findings.stale), 'target')} with data older than {findings.stale_after_days} days"
    return [
        f"{where}.",
        unused,
        "; ".join([compared, *([jobs] if jobs else []), *([stale] if findings.stale else [])]) + ".",
    ]


def _add_changes(body: _Body, findings: Findings, cap: int, top: int) -> None:
    changed = sorted(
        (t for t in findings.targets if t.changed), key=lambda t: (_rank(t.target_type) > 1, -t.changed, *_key(t))
    )
    if not changed or not body.add("\nWHAT CHANGED since the previous snapshot (roots and OUs first)"):
        return

    def line(target: TargetFindings) -> str:
        parts = [
            f"{len(names):,} newly {what}: {_names(names, top)}"
            for what, names in (("unused", target.newly_unused), ("used", target.newly_used))
            if names
        ]
        return f"- {_label(target)}: {'; '.join(parts)}"

    def more(left: int) -> str:
        accounts = sum(t.target_type == "ACCOUNT" for t in changed[len(changed) - left :])
        return f"... and {_plural(left, 'more target')} changed ({accounts:,} accounts): saved query newly_unused"

    body.items(changed, cap, line, more)


def _add_actions(
    body: _Body, findings: Findings, guardrails: Guardrails | None, max_lines: int, reporter_role: str | None
) -> None:
    groups = _failure_groups(findings.problems)
    # Held and evidence-less recommendations ask nothing of anyone today; they stay in the day's files.
    proposals = [line for line in guardrails.lines if line.status in _ACTIONABLE] if guardrails else []
    if not (groups or proposals or findings.stale or (guardrails and guardrails.error)):
        return
    if not body.add("\nWHAT TO DO"):
        return

    def failed(group: tuple[str, list[ProblemJob]]) -> str:
        code, jobs = group
        statuses = "/".join(sorted({job.status for job in jobs}))
        named = _few(jobs)
        words = next((_short(_clean(job.error_message), _TEXT_CHARS) for job in jobs if job.error_message), "")
        fix = fix_for(code, reporter_role)
        return (
            f"- {code}: {_plural(len(jobs), 'report job')} {statuses}, on {named}."
            + (f" IAM: {words.rstrip('.')}." if words else "")
            + (f" Fix: {fix}" if fix else " No known fix: see report_jobs.")
        )

    body.items(
        groups,
        min(max_lines, FAILURE_LINES),
        failed,
        lambda left: f"... and {_plural(left, 'more error code')}: see report_jobs",
    )
    if guardrails and guardrails.error:
        body.add(f"- Guardrail recommendations failed ({_short(_clean(guardrails.error), _TEXT_CHARS)}): none today")

    def proposal(line: ProposalLine) -> str:
        label = _label_of(line.target_name, line.target_type, line.target_id)
        if line.status != Status.PROPOSED.value:
            return f"- Guardrail for {label} not proposed ({line.status}): {_short(_clean(line.reason), _TEXT_CHARS)}"
        return (
            f"- Review the guardrail for {label}: deny {_plural(line.services, 'service')} in "
            f"{_plural(line.policies, 'SCP')} (largest {line.largest_chars:,} chars); "
            f"{line.new} new, {line.withdrawn} withdrawn"
        )

    body.items(
        proposals,
        min(max_lines, PROPOSAL_LINES),
        proposal,
        lambda left: f"... and {left} more: see Guardrail proposals below",
    )
    if findings.stale:
        never = sum(target.data_age_days is None for target in findings.stale)
        body.add(
            f"- Check {_plural(len(findings.stale), 'target')} with data older than {findings.stale_after_days} "
            f"days ({never:,} never collected), oldest first: {_few(findings.stale)}"
        )


def _add_where(body: _Body, targets: Sequence[TargetFindings], cap: int) -> None:
    unused = [t for t in targets if t.unused_count]
    scopes = [t for t in unused if t.target_type != "ACCOUNT" and t.policy_id is None]
    shown, kind, one = (scopes, "roots and OUs", "root or OU") if scopes else (unused, "targets", "target")
    if not shown or not body.add(f"\nWHERE MOST IS UNUSED ({kind}, most unused first)"):
        return

    def line(target: TargetFindings) -> str:
        of = f" of {target.allowed_count:,} allowed" if target.allowed_count else ""
        accounts = f"; {_plural(target.accounts_below, 'account')}" if target.accounts_below else ""
        return f"- {_label(target)}: {target.unused_count:,}{of} services unused{accounts}"

    body.items(
        sorted(shown, key=lambda t: (-t.unused_count, *_key(t))),
        cap,
        line,
        lambda left: f"... and {left:,} more {kind if left > 1 else one} with unused services: see the report page",
    )


def _footer(findings: Findings, dt: str, run_id: str, guardrails: Guardrails | None, report: PageOutcome | None) -> str:
    lines = ["", "SEE THE REST"]
    if report and report.page:
        lines += [f"Report page: {report.page.uri}", f"  console: {report.page.console_url}"]
    elif report and report.error:
        lines.append(f"No report page today: {_short(_clean(report.error), _TEXT_CHARS)}")
    if guardrails and guardrails.location:
        lines.append(f"Guardrail proposals: {guardrails.location}")
    settled = ", ".join(f"'{status.value}'" for status in (JobStatus.COMPLETED, JobStatus.DEFERRED))
    lines += [
        f"Athena, partition dt = '{dt}' (run {run_id}); saved queries (latest snapshot): {', '.join(SAVED_QUERIES)}",
        f"  SELECT target_path, policy_id, count(*) AS unused FROM access_details WHERE dt = '{dt}' AND "
        f"(last_authenticated_time IS NULL OR last_authenticated_time < collected_at - INTERVAL "
        f"'{findings.unused_after_days}' DAY) GROUP BY target_path, policy_id ORDER BY unused DESC;",
    ]
    if findings.problems:
        lines.append(
            "  SELECT target_path, job_status, error_code, error_message FROM report_jobs "
            f"WHERE dt = '{dt}' AND job_status NOT IN ({settled});"
        )
    return "".join(f"{line}\n" for line in lines)


def _failure_groups(problems: Sequence[ProblemJob]) -> list[tuple[str, list[ProblemJob]]]:
    """Problem jobs by error code (the status when there is none), most jobs first; roots and OUs first in each."""
    groups: dict[str, list[ProblemJob]] = {}
    for job in sorted(problems, key=lambda job: (_rank(job.target_type), *_key(job))):
        groups.setdefault(job.error_code or job.status, []).append(job)
    return sorted(groups.items(), key=lambda group: (-len(group[1]), group[0]))


def _stage_errors(guardrails: Guardrails | None, report: PageOutcome | None) -> list[str]:
    return [error for error in (guardrails.error if guardrails else "", report.error if report else "") if error]
