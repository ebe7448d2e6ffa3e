"""An SCP linter for tests: parliament's IAM policy findings plus the SCP rules parliament does not know.

`lint_scp(text)` returns human-readable problems (empty: clean); `scp_size(text)` is the UTF-8 byte length of
the (minified) text, reported separately. Parliament (an IAM policy linter) checks the IAM grammar: elements,
Effect, Version, Sid, condition operators and value types. It does not know SCPs, so it accepts what no
generated SCP may contain: a Principal, a Deny of "*" or of NotAction, a Resource other than "*". Those are the
checks below, each against our service catalog (`iam_report_emulator.catalog`), not parliament's.

The filter: parliament 1.6.4's built-in service list predates 46 of the catalog's 456 namespaces (e.g. `evs`,
`s3vectors`, `bedrock-agentcore`), and reports `<namespace>:*` for those as UNKNOWN_PREFIX (LOW). Those findings
are dropped when the prefix is a namespace in our catalog, and only then: `notaservice:*` is still reported.
Linting every catalog namespace as `<namespace>:*` in the generated shape (with and without the Condition)
gives exactly those 46 UNKNOWN_PREFIX findings and no finding of any other type (no UNKNOWN_ACTION,
RESOURCE_STAR, ...), so no other issue type is filtered.

Parliament stops analysing a statement at its first unknown prefix, so a statement that denies one of those
46 services would have its Condition unchecked (a non-ARN `aws:PrincipalARN` value goes unreported). When the
filter drops anything, parliament is run again on a copy of the policy without those actions, and what that
second pass finds is reported too.
"""

from __future__ import annotations

import copy
import json
import warnings
from functools import lru_cache
from typing import Any

from iam_report_emulator.catalog import load_catalog

with warnings.catch_warnings():
    # parliament 1.6.4 imports the deprecated pkg_resources (setuptools is pinned below 81 for it in
    # requirements-dev.txt) and leaves its data files open at import; neither is ours to fix.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    warnings.filterwarnings("ignore", message="unclosed file", category=ResourceWarning)
    from parliament import analyze_policy_string, enhance_finding

VERSION = "2012-10-17"
CONDITION_OPERATORS = ("ArnNotLike", "ArnNotLikeIfExists")
CONDITION_KEY = "aws:PrincipalARN"
STALE_PREFIX_ISSUE = "UNKNOWN_PREFIX"  # the one parliament issue type filtered (for catalog namespaces only)


@lru_cache(maxsize=1)
def catalog_namespaces() -> frozenset[str]:
    """The service namespaces IAM knows (the catalog's), lower case."""
    return frozenset(namespace.lower() for namespace in load_catalog().services)


def scp_size(text: str) -> int:
    """The policy's size as the UTF-8 byte length of its text (pass the minified text)."""
    return len(text.encode("utf-8"))


def lint_scp(text: str) -> list[str]:
    """Every problem found in the SCP `text`: parliament's findings (minus the filter in the module docstring)
    first, then the SCP rules'. Empty when the policy is clean."""
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError as error:
        return [*_parliament_problems(text, None), f"not valid JSON: {error}"]
    return [*_parliament_problems(text, document), *_scp_problems(document)]


# Parliament


def parliament_issues(text: str) -> list[tuple[str, str]]:
    """Parliament's own findings on `text`, unfiltered, as (issue, detail): what the filter starts from."""
    policy = analyze_policy_string(text, ignore_private_auditors=True)
    return [(finding.issue, str(finding.detail)) for finding in policy.findings]


def _parliament_problems(text: str, document: Any) -> list[str]:
    findings, dropped = _parliament_findings(text)
    problems = [_describe(finding, with_column=True) for finding in findings]
    if dropped and isinstance(document, dict):
        seen = {(finding.issue, str(finding.detail)) for finding in findings}
        second, _ = _parliament_findings(json.dumps(_without_prefixes(document, dropped), separators=(",", ":")))
        problems += [
            f"{_describe(finding, with_column=False)} (with {', '.join(sorted(dropped))} left out)"
            for finding in second
            if (finding.issue, str(finding.detail)) not in seen
        ]
    return problems


def _parliament_findings(text: str) -> tuple[list[Any], set[str]]:
    """Parliament's findings on `text`, severity added, except UNKNOWN_PREFIX for catalog namespaces; and
    the prefixes of the findings left out."""
    try:
        policy = analyze_policy_string(text, ignore_private_auditors=True)
    except Exception as error:  # a crash of the linter is a problem to report, not a test error
        return [_CrashFinding(error)], set()
    kept: list[Any] = []
    dropped: set[str] = set()
    for finding in policy.findings:
        prefix = _unknown_prefix(finding)
        if prefix is not None and prefix in catalog_namespaces():
            dropped.add(prefix)
        else:
            kept.append(enhance_finding(finding))
    return kept, dropped


def _unknown_prefix(finding: Any) -> str | None:
    """The service prefix of an UNKNOWN_PREFIX finding (from the action it is located at), lower case."""
    if finding.issue != STALE_PREFIX_ISSUE:
        return None
    location = finding.location if isinstance(finding.location, dict) else {}
    action = location.get("string")
    if isinstance(action, str) and ":" in action:
        return action.split(":", 1)[0].lower()
    detail = str(finding.detail)  # "Unknown prefix <prefix>"
    return detail.rsplit(" ", 1)[-1].lower() if detail.startswith("Unknown prefix ") else None


def _without_prefixes(document: dict[str, Any], prefixes: set[str]) -> dict[str, Any]:
    """A copy of the policy whose statements no longer list actions of the services `prefixes`."""
    trimmed = copy.deepcopy(document)
    statements = trimmed.get("Statement")
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict):
            continue
        for element in ("Action", "NotAction"):
            if element in statement:
                actions = _as_list(statement[element])
                statement[element] = [a for a in actions if not (isinstance(a, str) and _prefix(a) in prefixes)]
    return trimmed


class _CrashFinding:
    """A parliament exception, shaped like its findings."""

    def __init__(self, error: Exception) -> None:
        self.issue = "EXCEPTION"
        self.severity = "CRITICAL"
        self.title = "parliament raised an exception"
        self.detail = f"{type(error).__name__}: {error}"
        self.location: dict[str, Any] = {}


def _describe(finding: Any, *, with_column: bool) -> str:
    detail = finding.detail if finding.detail not in (None, "", []) else finding.title
    where = ""
    location = finding.location if isinstance(finding.location, dict) else {}
    if "string" in location:
        where += f" at {location['string']!r}"
    if with_column and "column" in location:
        where += f" (column {location['column']})"
    return f"parliament {finding.issue} ({finding.severity}): {detail}{where}"


# SCP rules


def _scp_problems(document: Any) -> list[str]:
    if not isinstance(document, dict):
        return [f"the policy must be a JSON object, not {type(document).__name__}"]
    problems: list[str] = []
    if "Version" not in document:
        problems.append(f'Version must be "{VERSION}" but is missing')
    elif document["Version"] != VERSION:
        problems.append(f'Version must be "{VERSION}", not {json.dumps(document["Version"])}')
    statements = document.get("Statement")
    if statements is None:
        return [*problems, "Statement is missing"]
    statements = statements if isinstance(statements, list) else [statements]
    if not statements:
        problems.append("Statement is empty")
    for index, statement in enumerate(statements):
        problems += _statement_problems(index, statement)
    return problems


def _statement_problems(index: int, statement: Any) -> list[str]:
    where = f"Statement[{index}]"
    if not isinstance(statement, dict):
        return [f"{where}: must be an object"]
    if isinstance(statement.get("Sid"), str):
        where += f" {statement['Sid']}"
    problems = [
        f"{where}: has {element}; an SCP cannot name principals"
        for element in ("Principal", "NotPrincipal")
        if element in statement
    ]
    effect = statement.get("Effect")
    if effect not in ("Deny", "Allow"):
        problems.append(f"{where}: Effect must be Deny or Allow, not {json.dumps(effect)}")
    if effect == "Deny":
        problems += [f"{where}: {problem}" for problem in _deny_action_problems(statement)]
    if "NotResource" in statement:
        problems.append(f'{where}: has NotResource; Resource must be "*"')
    if statement.get("Resource") != "*":
        resource = json.dumps(statement["Resource"]) if "Resource" in statement else "missing"
        problems.append(f'{where}: Resource must be "*", not {resource}')
    if "Condition" in statement:
        problems += [f"{where}: {problem}" for problem in _condition_problems(statement["Condition"])]
    return problems


def _deny_action_problems(statement: dict[str, Any]) -> list[str]:
    """A Deny must name whole services of the catalog: nothing that can deny every action."""
    problems: list[str] = []
    if "NotAction" in statement:
        problems.append("a Deny with NotAction denies every action it does not list")
    elif "Action" not in statement:
        problems.append("a Deny without Action")
    if "Action" not in statement:
        return problems
    actions = _as_list(statement["Action"])
    if not actions:
        problems.append("a Deny with an empty Action")
    for action in actions:
        if not isinstance(action, str):
            problems.append(f"Action {json.dumps(action)} is not a string")
        elif action == "*":
            problems.append('a Deny of "*" denies every action')
        elif action.count(":") != 1:
            problems.append(f'Deny of "{action}": not of the form service:*')
        elif "*" in _prefix(action) or "?" in _prefix(action):
            problems.append(f'Deny of "{action}": a wildcard service can deny every service')
        elif not action.endswith(":*"):
            problems.append(f'Deny of "{action}": not a whole service (service:*)')
        elif _prefix(action) not in catalog_namespaces():
            problems.append(f'Deny of "{action}": "{_prefix(action)}" is not a service namespace in the catalog')
    return problems


def _condition_problems(condition: Any) -> list[str]:
    """Only exemptions of principals by ARN: {"ArnNotLike(IfExists)": {"aws:PrincipalARN": ARN pattern(s)}}."""
    if not isinstance(condition, dict):
        return ["Condition must be an object"]
    problems: list[str] = []
    allowed = " or ".join(CONDITION_OPERATORS)
    for operator, block in condition.items():
        if operator not in CONDITION_OPERATORS:
            problems.append(f'Condition operator "{operator}" is not allowed (only {allowed})')
        elif not isinstance(block, dict) or not block:
            problems.append(f'Condition "{operator}" must map {CONDITION_KEY} to ARN patterns')
        else:
            for key, values in block.items():
                if key.lower() != CONDITION_KEY.lower():  # condition keys are case-insensitive
                    problems.append(f'Condition key "{key}" under {operator} is not allowed (only {CONDITION_KEY})')
                elif not _as_list(values) or not all(isinstance(value, str) for value in _as_list(values)):
                    problems.append(f"Condition {operator} {key} must be an ARN pattern or a list of them")
    return problems


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _prefix(action: str) -> str:
    """The service of an action, lower case (IAM matches action prefixes case-insensitively)."""
    return action.split(":", 1)[0].lower()
