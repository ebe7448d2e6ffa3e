"""The text of a proposed SCP: deterministic, minified, sized as AWS counts, split to fit.

A proposal is one Deny statement per SCP over `service:*` actions in namespace order, on every
resource, with the break-glass principals exempted by `ArnNotLike` on `aws:PrincipalARN`. The JSON is
minified with a fixed key order, so the same services give byte-identical text every day and a diff
means something. A size is the UTF-8 byte length of that text: AWS's pages count the limit in
characters or in bytes, and the minified text is all ASCII, so both agree. Compact where it is exact:
one action or one principal is written as a string, not a list. Wildcards across services (`iot*:*`)
are not used: they would also deny services AWS launches later under the same prefix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

SID = "DenyUnusedServices"


class PolicyTooSmallError(ValueError):
    """One service does not fit in an SCP of the configured size."""


def _one_or_list(values: Sequence[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else list(values)


def document(namespaces: Sequence[str], break_glass: Sequence[str] = ()) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": SID,
        "Effect": "Deny",
        "Action": _one_or_list([f"{ns}:*" for ns in namespaces]),
        "Resource": "*",
    }
    if break_glass:
        statement["Condition"] = {"ArnNotLike": {"aws:PrincipalARN": _one_or_list(sorted(break_glass))}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def render(namespaces: Sequence[str], break_glass: Sequence[str] = ()) -> str:
    return json.dumps(document(namespaces, break_glass), separators=(",", ":"))


def size(text: str) -> int:
    return len(text.encode())


def pack(namespaces: Sequence[str], break_glass: Sequence[str], max_chars: int) -> list[list[str]]:
    """`namespaces` (sorted here) in consecutive groups, each rendering within `max_chars`, as few as that."""
    groups: list[list[str]] = []
    current: list[str] = []
    for ns in sorted(set(namespaces)):
        if size(render([*current, ns], break_glass)) <= max_chars:
            current.append(ns)
            continue
        if not current:
            raise PolicyTooSmallError(f"an SCP denying only {ns}:* is over {max_chars} characters")
        groups.append(current)
        current = [ns]
        if size(render(current, break_glass)) > max_chars:
            raise PolicyTooSmallError(f"an SCP denying only {ns}:* is over {max_chars} characters")
    if current:
        groups.append(current)
    return groups
