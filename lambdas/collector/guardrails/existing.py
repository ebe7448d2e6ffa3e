"""The SCPs a node has now: who manages each, and which services they already deny.

Read through the reporter session at discover (`read_attached`): `ListPoliciesForTarget` per node
and `DescribePolicy` once per distinct SCP. Only what the guardrails need is kept: the policy's id,
name, manager and the whole-service patterns (`svc:*`, `*`, `sv*:*`) its Deny statements deny on
every resource, outright or with only principals exempted (the break-glass form). Whether IAM's
report still lists a service denied with principals exempted is not known; either way, a service
one of these patterns names is never proposed again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from lambdas.collector.organization import AttachedScp, Manager

if TYPE_CHECKING:
    from mypy_boto3_organizations import OrganizationsClient

_PRINCIPAL_KEYS = {"aws:principalarn"}
# Operators that exempt the principals they match and deny the rest.
_EXEMPTING = {
    f"{op}{suffix}"
    for op in ("arnnotlike", "arnnotequals", "stringnotlike", "stringnotequals")
    for suffix in ("", "ifexists")
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _only_exempts_principals(condition: Any) -> bool:
    if condition is None:
        return True
    if not isinstance(condition, dict):
        return False
    return all(
        operator.lower() in _EXEMPTING
        and isinstance(keys, dict)
        and all(key.lower() in _PRINCIPAL_KEYS for key in keys)
        for operator, keys in condition.items()
    )


def deny_patterns(content: str) -> tuple[str, ...]:
    """The whole-service action patterns that `content`'s Deny statements deny on every resource,
    with no condition or only principals exempted; sorted, lower case. Unreadable content: none."""
    try:
        document = json.loads(content)
    except json.JSONDecodeError:
        return ()
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    patterns: set[str] = set()
    for statement in _as_list(statements):
        if not isinstance(statement, dict) or statement.get("Effect") != "Deny" or "Action" not in statement:
            continue
        if "*" not in _as_list(statement.get("Resource", "*")) or not _only_exempts_principals(
            statement.get("Condition")
        ):
            continue
        for action in _as_list(statement["Action"]):
            if isinstance(action, str):
                service, _, name = action.lower().partition(":")
                if action == "*" or (service and not name.replace("*", "")):
                    patterns.add("*" if action == "*" else f"{service}:*")
    return tuple(sorted(patterns))


def denied(patterns: Iterable[str], namespaces: Iterable[str]) -> set[str]:
    """The `namespaces` some pattern covers."""
    services = [p.partition(":")[0] for p in patterns]
    return {ns for ns in namespaces if any(s == "*" or fnmatchcase(ns, s) for s in services)}


def read_attached(organizations: OrganizationsClient, target_ids: Iterable[str]) -> dict[str, tuple[AttachedScp, ...]]:
    """The SCPs attached to each target, each described once however many targets share it."""
    described: dict[str, AttachedScp] = {}
    pages = organizations.get_paginator("list_policies_for_target")
    out: dict[str, tuple[AttachedScp, ...]] = {}
    for target_id in target_ids:
        attached: list[AttachedScp] = []
        for page in pages.paginate(TargetId=target_id, Filter="SERVICE_CONTROL_POLICY"):
            for summary in page["Policies"]:
                policy_id = summary["Id"]
                if policy_id not in described:
                    content = organizations.describe_policy(PolicyId=policy_id)["Policy"]["Content"]
                    described[policy_id] = AttachedScp(
                        id=policy_id,
                        name=summary["Name"],
                        managed_by=Manager.of(summary["Name"], summary.get("AwsManaged", False)),
                        denies=deny_patterns(content),
                    )
                attached.append(described[policy_id])
        out[target_id] = tuple(sorted(attached, key=lambda scp: scp.id))
    return out
