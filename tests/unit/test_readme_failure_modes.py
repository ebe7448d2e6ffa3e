"""The README's "Failure modes" table names, for each fault, the tests that prove it: each must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTED = re.compile(r"`((?:e2e|integration|unit|infra|browser)/[\w/]+\.py)(?:::(\w+))?`")


def failure_modes() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Failure modes\n", 1)[1].split("\n## ", 1)[0]
    return [
        line for line in section.splitlines() if line.startswith("| ") and not line.startswith(("| fault ", "| ---"))
    ]


def test_every_fault_names_tests_that_exist() -> None:
    rows = failure_modes()
    assert len(rows) >= 20
    missing = []
    for row in rows:
        tests = TESTED.findall(row.rsplit(" | ", 1)[-1])
        if not tests and "not end to end" not in row:
            missing.append(f"no test named: {row[:80]}")
        for path, name in tests:
            source = ROOT / "tests" / path
            if not source.exists():
                missing.append(f"{path}: no such file")
            elif name and not re.search(rf"^def {name}\(", source.read_text(), re.MULTILINE):
                missing.append(f"{path}::{name}: no such test")
    assert missing == []
