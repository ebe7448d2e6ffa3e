"""Whether a role's trust policy lets a caller assume it: what STS decides on `sts:AssumeRole`.

moto answers every AssumeRole; the emulator (`sts_extension`) asks this module first. A trust policy is
evaluated as IAM evaluates a resource policy: an explicit Deny wins, else one Allow must match the action
(`sts:AssumeRole`), the principal and every condition.

Principals: `"*"`, and in `AWS` an account (`123456789012` or `arn:aws:iam::123456789012:root`: any principal
of that account), a role's ARN (its sessions), a user's ARN, or a session's own ARN. `Service`,
`Federated` and `CanonicalUser` never name the AWS principals that call AssumeRole here.

Conditions: the String*, Arn*, Null and Bool operators (with `IfExists`) on the keys AssumeRole has:
`sts:ExternalId`, `sts:RoleSessionName`, `aws:PrincipalArn` (a session's *role* ARN), `aws:PrincipalAccount`,
`aws:PrincipalType`. A key the request lacks fails a positive operator and passes a negated one, as in IAM.
An operator this module does not know fails its statement (closed, never open).

Not evaluated: the caller's own identity policy (IAM also requires it to allow `sts:AssumeRole` when the trust
names an account rather than the principal), SCPs and permission boundaries; policy variables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ACTION = "sts:AssumeRole"


@dataclass(frozen=True)
class Caller:
    """The principal that calls AssumeRole, as IAM's policy evaluation sees it."""

    arn: str  # as STS names it: arn:aws:sts::A:assumed-role/ROLE/SESSION, arn:aws:iam::A:user/NAME, …:root
    account: str
    principal_arn: str  # `aws:PrincipalArn`: a session's role ARN; a user's or the root's own ARN
    principal_type: str  # `aws:PrincipalType`: AssumedRole, User or Account


@dataclass(frozen=True)
class AssumeRoleRequest:
    role_arn: str
    session_name: str
    sts_external_id: str | None = None  # the ExternalId the request sent


def policy_principal(caller_arn: str) -> str:
    """The ARN a policy names a caller by: a session's role (`arn:aws:iam::A:role/R`, without a path), a
    user's IAM ARN (moto names its default principal `arn:aws:sts::A:user/moto`); others as they are."""
    prefix, _, resource = caller_arn.partition(":sts::")
    if not resource:
        return caller_arn
    account, _, name = resource.partition(":")
    if name.startswith("assumed-role/"):
        return f"{prefix}:iam::{account}:role/{name.split('/')[1]}"
    return f"{prefix}:iam::{account}:{name}"


def context_of(caller: Caller, request: AssumeRoleRequest) -> dict[str, str]:
    """The request's condition keys, lower-cased (IAM's keys are case-insensitive)."""
    keys = {
        "aws:principalarn": caller.principal_arn,
        "aws:principalaccount": caller.account,
        "aws:principaltype": caller.principal_type,
        "sts:rolesessionname": request.session_name,
    }
    if request.sts_external_id is not None:
        keys["sts:externalid"] = request.sts_external_id
    return keys


def admits(document: str | Mapping[str, Any], caller: Caller, request: AssumeRoleRequest) -> bool:
    """Whether the trust policy `document` lets `caller` make `request`."""
    policy = json.loads(document) if isinstance(document, str) else document
    context = context_of(caller, request)
    allowed = False
    for statement in _as_list(policy.get("Statement", [])):
        if not isinstance(statement, dict) or not _matches(statement, caller, context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(statement: Mapping[str, Any], caller: Caller, context: Mapping[str, str]) -> bool:
    if "Action" in statement:
        action = any(_like(pattern, ACTION, fold=True) for pattern in _as_list(statement["Action"]))
    else:
        action = not any(_like(pattern, ACTION, fold=True) for pattern in _as_list(statement.get("NotAction", [])))
    if not action:
        return False
    if "Principal" in statement:
        principal = _names(statement["Principal"], caller)
    else:
        principal = "NotPrincipal" in statement and not _names(statement["NotPrincipal"], caller)
    return principal and _conditions_hold(statement.get("Condition", {}), context)


def _names(principal: Any, caller: Caller) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    return any(_names_aws(value, caller) for value in _as_list(principal.get("AWS", [])))


def _names_aws(value: Any, caller: Caller) -> bool:
    if not isinstance(value, str):
        return False
    if value == "*":
        return True
    if re.fullmatch(r"\d{12}", value) or re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:root", value):
        return value.split(":")[4 if value.startswith("arn:") else 0] == caller.account
    return value in (caller.principal_arn, caller.arn)


# -- conditions --------------------------------------------------------------------------------


def _conditions_hold(conditions: Any, context: Mapping[str, str]) -> bool:
    if not isinstance(conditions, dict):
        return False
    return all(
        isinstance(keys, dict) and all(_holds(operator, key, values, context) for key, values in keys.items())
        for operator, keys in conditions.items()
    )


def _holds(operator: str, key: str, values: Any, context: Mapping[str, str]) -> bool:
    wanted = [str(value) for value in _as_list(values)]
    actual = context.get(key.lower())
    if operator == "Null":
        return (actual is None) == (wanted[0].lower() == "true")
    base = operator.removesuffix("IfExists")
    test = _OPERATORS.get(base.replace("Not", "", 1))
    if test is None:
        return False  # unknown to this evaluator: the statement does not apply
    negated = "Not" in base
    if actual is None:
        return operator.endswith("IfExists") or negated
    matched = any(test(value, actual) for value in wanted)
    return not matched if negated else matched


def _like(pattern: str, value: str, *, fold: bool = False) -> bool:
    expression = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(expression, value, re.IGNORECASE if fold else 0) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """IAM matches an ARN part by part (the six `:`-separated parts), wildcards within a part."""
    parts, actual = pattern.split(":", 5), value.split(":", 5)
    return len(parts) == len(actual) == 6 and all(_like(p, a) for p, a in zip(parts, actual, strict=True))


_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda wanted, actual: wanted == actual,
    "StringEqualsIgnoreCase": lambda wanted, actual: wanted.lower() == actual.lower(),
    "StringLike": _like,
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "Bool": lambda wanted, actual: wanted.lower() == actual.lower(),
}
