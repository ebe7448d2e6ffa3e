"""The benchmark's day logic: which day is the steady state, and parallel units' progress told apart."""

from __future__ import annotations

import io
from typing import Any

import pytest

from harness.bench import Prefixed, iam_model, steady_index
from iam_report_emulator.iam_model import CapScope


def day(collected: int, backlog: int = 0, status: str = "SUCCEEDED") -> dict[str, Any]:
    return {"targets_collected": collected, "backlog": backlog, "status": status}


@pytest.mark.parametrize(
    ("days", "steady"),
    [
        # The catch-up: backlog first, then two days alike
        ([day(7200, 3000), day(5300), day(2918), day(2930)], 3),
        # Two days alike while the backlog remains are not steady
        ([day(7200, 4000), day(7200, 800), day(5000), day(2900)], None),
        # A day that did not succeed breaks the pair
        ([day(100), day(40), day(40, status="TIMED_OUT"), day(40), day(41)], 4),
        # Within 5% of the larger of the two
        ([day(100), day(40), day(38)], 2),
        ([day(100), day(40), day(37)], None),
    ],
)
def test_the_steady_state_is_the_first_of_two_like_days_after_the_backlog(
    days: list[dict[str, Any]], steady: int | None
) -> None:
    assert steady_index(days) == steady


def test_iam_models_are_named_with_their_cap_scope() -> None:
    assert (iam_model("observed-account").max_jobs_in_progress, iam_model("observed-account").cap_scope) == (
        1,
        CapScope.ACCOUNT,
    )
    assert iam_model("observed-path").cap_scope is CapScope.PATH
    assert iam_model("generous").max_jobs_in_progress == 50


def test_each_line_of_a_parallel_unit_is_prefixed_with_its_name() -> None:
    stream = io.StringIO()
    out = Prefixed(stream, "[observed-path 100] ")
    out.write("\n# a heading\n  [ 0.1s] state ")
    out.write("Discover\n")
    assert stream.getvalue() == "\n[observed-path 100] # a heading\n[observed-path 100]   [ 0.1s] state Discover\n"
