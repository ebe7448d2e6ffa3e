"""Whether the principal that generates a report may make the Organizations reads its job needs.

IAM's report job reads the organization on the caller's behalf: DescribePolicy, ListParents,
ListPoliciesForTarget and ListRoots always, ListChildren without a policy id and ListTargetsForPolicy
with one (observed live: a caller missing one gets a job that ends FAILED with
`ORGANIZATIONS_REPORT_ACCESS_DENIED`, not a refused call). The emulator knows by evaluating the
caller's own IAM policies in moto (inline and managed, of the role or of the user and its groups)
with moto's policy evaluator. A principal moto does not hold (a role never created in the
emulator, the account's root) is not evaluated: it is taken to have the reads (our guess; real IAM
would evaluate it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.iam.models import IAMBackend

ALWAYS = (
    "organizations:DescribePolicy",
    "organizations:ListParents",
    "organizations:ListPoliciesForTarget",
    "organizations:ListRoots",
)


def reads_needed(policy_id: str | None) -> tuple[str, ...]:
    extra = "organizations:ListTargetsForPolicy" if policy_id else "organizations:ListChildren"
    return (*ALWAYS, extra)


def missing_reads(backend: IAMBackend, caller_arn: str, policy_id: str | None) -> list[str]:
    """The Organizations actions the job needs that the caller's policies do not allow."""
    found = _principal(backend, caller_arn)
    if found is None:
        return []
    documents = list(_documents(backend, *found))
    return [action for action in reads_needed(policy_id) if not _allowed(documents, action)]


def _allowed(documents: list[IAMPolicy], action: str) -> bool:
    results = [document.is_action_permitted(action) for document in documents]
    return PermissionResult.DENIED not in results and PermissionResult.PERMITTED in results


def _principal(backend: IAMBackend, caller_arn: str) -> tuple[str, Any] | None:
    """("role" | "user", the moto object) of the caller, or None when moto does not hold it."""
    kind, _, rest = caller_arn.split(":", 5)[-1].partition("/")
    if kind == "assumed-role":
        name = rest.split("/", 1)[0]
        role = next((r for r in backend.roles.values() if r.name == name), None)
        return ("role", role) if role is not None else None
    if kind == "user":
        user = backend.users.get(rest.rsplit("/", 1)[-1])
        return ("user", user) if user is not None else None
    return None


def _documents(backend: IAMBackend, kind: str, principal: Any) -> Iterator[IAMPolicy]:
    holders = [principal]
    if kind == "user":
        holders.extend(group for group in backend.groups.values() if principal in group.users)
    for holder in holders:
        for document in holder.policies.values():
            yield IAMPolicy(document)
        for managed in holder.managed_policies.values():
            yield IAMPolicy(managed)
