"""Text of the alert: one-line names, labels and counts that fit a line and an e-mail client."""

from __future__ import annotations

import re
from collections.abc import Sequence

from lambdas.collector.insight.unused import ProblemJob, StaleTarget, TargetFindings

NAME_CHARS = 40
TARGETS_PER_FAILURE = 3
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
KIND = {"ROOT": "root", "ORGANIZATIONAL_UNIT": "OU", "ACCOUNT": "account"}


def rank(target_type: str) -> int:
    return {"ROOT": 0, "ORGANIZATIONAL_UNIT": 1}.get(target_type, 2)


def key(target: TargetFindings | ProblemJob) -> tuple[str, str]:
    return target.target_path, target.policy_id or ""


def label(target: TargetFindings) -> str:
    label = label_of(target.target_name, target.target_type, target.target_id)
    return f"{label[:-1]}, SCP {target.policy_id})" if target.policy_id else label


def label_of(name: str | None, target_type: str, target_id: str) -> str:
    return f"{short(clean(name or target_id), NAME_CHARS)} ({KIND.get(target_type, target_type)} {target_id})"


def few(targets: Sequence[ProblemJob | StaleTarget]) -> str:
    return names([brief(target) for target in targets[:TARGETS_PER_FAILURE]], TARGETS_PER_FAILURE, len(targets))


def brief(target: ProblemJob | StaleTarget) -> str:
    """A target in a list of a few: a root or OU by name and kind, an account by name and id."""
    name, kind = short(clean(target.target_name or target.target_id), NAME_CHARS), target.target_type
    return (
        f"{name} ({target.target_id})" if kind == "ACCOUNT" and target.target_name else f"{name} {KIND.get(kind, kind)}"
    )


def names(names: Sequence[str], top: int, total: int | None = None) -> str:
    """The first `top` of `names` (of `total`, when only those were given), and how many more."""
    left = (len(names) if total is None else total) - min(top, len(names))
    return ", ".join(names[:top]) + (f" and {left:,} more" if left > 0 else "")


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def short(text: str, limit: int, ellipsis: str = "…") -> str:
    return text if len(text) <= limit else text[: limit - len(ellipsis)].rstrip() + ellipsis


def clean(text: str | None) -> str:
    """One line of text: IAM error messages and names may carry newlines or control characters."""
    return " ".join(_CONTROL.sub(" ", text or "").split())
