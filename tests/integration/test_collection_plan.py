"""The collection plan over consecutive days, on the emulator's clock: day 1 collects every target, later
days root, OUs and an even share of the accounts (due, or ahead of their day), and every day's partition holds
every target exactly once; a day after an OU's report changes, the accounts under it are collected."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.collect.plan import fair_share
from lambdas.collector.models import Target
from tests.activity_swap import next_day, prepare_swap
from tests.collector_run import discover_run, run_by_hand, snapshot
from tests.helpers import organization_targets, ou_id, subtree_accounts

DAY = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def once_per_target(details: pa.Table, jobs: pa.Table) -> dict[tuple[str, str | None], dict[str, Any]]:
    """The day's COMPLETED record per target, checking that each target's rows come from exactly that one job."""
    completed = jobs.filter(pc.equal(jobs["job_status"], "COMPLETED")).to_pylist()
    by_target = {(r["target_path"], r["policy_id"]): r for r in completed}
    assert len(by_target) == len(completed), "a target with two completed records on one day"
    jobs_of = Counter(
        (row["target_path"], row["job_id"]) for row in details.select(["target_path", "job_id"]).to_pylist()
    )
    assert len({path for path, _ in jobs_of}) == len(jobs_of), "a target with rows of two reports on one day"
    assert {path for path, _ in jobs_of} <= {path for path, _ in by_target}
    for (path, _), record in by_target.items():  # a report of zero services has no rows
        assert jobs_of[path, record["job_id"]] == record["services_accessible"]
    return by_target


def day(n: int) -> tuple[str, datetime]:
    when = DAY + timedelta(days=n)
    return when.date().isoformat(), when


def test_day_one_collects_all_then_root_ous_and_an_even_share_of_accounts_and_every_day_is_complete(
    s3: Any, demo_org: OrganizationSpec
) -> None:
    targets = organization_targets(demo_org)
    always = 1 + len(demo_org.ous)
    accounts = targets - always
    share = fair_share(accounts, 7)
    # Day 1: nothing collected before, so every account is new
    first = run_by_hand(s3, "day-1", DAY)
    assert first.run["targets"] == targets
    day1 = once_per_target(*snapshot(s3, day(0)[0]))
    assert len(day1) == targets
    assert {r["plan"] for r in day1.values() if r["target_type"] == "ACCOUNT"} == {"NEW"}
    # Day 2 (cadence 7): root and OUs collected, the fair share of accounts ahead of their day (the stalest,
    # here all of day 1, by path), the others carried forward with their own collected_at
    dt2, when2 = day(1)
    second = run_by_hand(s3, "day-2", when2)
    assert second.run["targets"] == always + share
    details, jobs = snapshot(s3, dt2)
    day2 = once_per_target(details, jobs)
    assert len(day2) == targets
    assert jobs.num_rows == targets
    ahead = sorted(path for (path, _), r in day2.items() if r["plan"] == "AHEAD")
    assert ahead == sorted(path for (path, _), r in day1.items() if r["target_type"] == "ACCOUNT")[:share]
    for key, record in day2.items():
        if record["plan"] == "NOT_DUE":
            assert (record["carried_forward"], record["data_age_days"]) == (True, 1)
            assert (record["run_id"], record["job_id"]) == (day1[key]["run_id"], day1[key]["job_id"])
            assert record["collected_at"] == DAY
        else:
            assert record["plan"] in ("ROOT_OR_OU", "AHEAD")
            assert (record["carried_forward"], record["data_age_days"], record["run_id"]) == (False, 0, "day-2")
    carried = details.filter(details["carried_forward"])
    assert set(carried["target_type"].to_pylist()) == {"ACCOUNT"}
    assert set(carried["collected_at"].to_pylist()) == {DAY}
    assert set(carried["data_age_days"].to_pylist()) == {1}
    assert set(details.filter(pc.invert(details["carried_forward"]))["data_age_days"].to_pylist()) == {0}
    # Days 3 to 8: every day root, OUs and the same share of accounts, ahead of their day or (from day 7,
    # data 6 days old) due; no account's data is ever older than the cadence
    for n in range(2, 8):
        dt, when = day(n)
        run = run_by_hand(s3, f"day-{n + 1}", when)
        records = once_per_target(*snapshot(s3, dt))
        assert len(records) == targets
        assert run.run["targets"] == always + share
        accounts_today = [r for r in records.values() if r["target_type"] == "ACCOUNT"]
        assert Counter(r["plan"] in ("AHEAD", "DUE") for r in accounts_today)[True] == share
        assert max(r["data_age_days"] for r in accounts_today) < 7
        if n == 6:  # day 7: the last of day 1's accounts are due
            assert "DUE" in {r["plan"] for r in accounts_today}


def test_a_day_after_an_ous_used_services_swap_with_equal_counts_its_accounts_are_collected(
    s3: Any, demo_org: OrganizationSpec, store: AccessReportStore
) -> None:
    # Given an account under Security whose one service leaves the tracking period and another is newly used
    # between day 1 and day 2 (Security's report then has as many services allowed and unused as before)
    security = ou_id(demo_org, "Security")
    swap = prepare_swap(demo_org, store, security)
    run_by_hand(s3, "day-1", DAY)
    next_day(store, swap)
    dt2, when2 = day(1)
    run_by_hand(s3, "day-2", when2)
    # When day 3 is planned (from day 2's OU reports beside day 1's)
    dt3, when3 = day(2)
    run_by_hand(s3, "day-3", when3)
    # Then Security's two reports differ in their used services, not in their counts
    used: list[set[str]] = []
    counts: set[tuple[int, int]] = set()
    for dt in (day(0)[0], dt2):
        details, jobs = snapshot(s3, dt)
        report = once_per_target(details, jobs)[demo_org.path(security), None]
        rows = details.filter(pc.and_(pc.equal(details["job_id"], report["job_id"]), details["accessed"]))
        used.append(set(rows["service_namespace"].to_pylist()))
        counts.add((report["services_accessible"], report["services_not_accessed"]))
    assert len(counts) == 1
    assert (used[1] - used[0], used[0] - used[1]) == ({swap.new}, {swap.gone})
    # And day 3 collects the accounts under Security that day 2 did not collect, as OU_CHANGED, and no other
    day2 = once_per_target(*snapshot(s3, dt2))
    under = {demo_org.path(a) for a in subtree_accounts(demo_org, security)}
    waiting = {path for (path, _), r in day2.items() if path in under and r["carried_forward"]}
    assert waiting
    day3 = once_per_target(*snapshot(s3, dt3))
    assert {path for (path, _), r in day3.items() if r["plan"] == "OU_CHANGED"} == waiting
    assert all(not day3[path, None]["carried_forward"] for path in waiting)


def test_what_does_not_fit_the_budget_is_deferred_and_is_the_next_runs_first_work(
    s3: Any, demo_org: OrganizationSpec
) -> None:
    targets = organization_targets(demo_org)
    always = 1 + len(demo_org.ous)
    # A budget of 60 s at 10 s per report (one job at a time) fits six targets: root and OUs always, few accounts
    tight = {"run_budget_seconds": 60, "poll_initial_wait_seconds": 10}
    fits = max(0, 6 - always)
    run = run_by_hand(s3, "day-1", DAY, options=tight)
    assert run.run["targets"] == always + fits
    _, jobs = snapshot(s3, "2026-11-24")
    assert jobs.num_rows == targets  # every target recorded: the deferred ones as DEFERRED
    deferred = jobs.filter(pc.equal(jobs["plan"], "OVER_BUDGET"))
    assert deferred.num_rows == targets - always - fits
    assert set(deferred["job_status"].to_pylist()) == {"DEFERRED"}
    waiting = set(deferred["target_path"].to_pylist())
    # The next day, with room enough, the deferred accounts are collected first (as new), the rest is not due
    dt2, when2 = day(1)
    run_by_hand(s3, "day-2", when2)
    records = once_per_target(*snapshot(s3, dt2))
    assert len(records) == targets
    assert {path for (path, _), r in records.items() if r["plan"] == "NEW"} == waiting
    assert all(not r["carried_forward"] for (path, _), r in records.items() if path in waiting)


def test_a_planned_target_that_fails_keeps_its_failure_record_and_carries_its_latest_rows(
    s3: Any, demo_org: OrganizationSpec, store: AccessReportStore
) -> None:
    run_by_hand(s3, "day-1", DAY)
    sandbox = demo_org.path(ou_id(demo_org, "Sandbox"))
    store.configure(failing_paths=frozenset({sandbox}))
    dt2, when2 = day(1)
    run_by_hand(s3, "day-2", when2)
    details, jobs = snapshot(s3, dt2)
    records = once_per_target(details, jobs)
    assert len(records) == organization_targets(demo_org)
    sandbox_jobs = jobs.filter(pc.equal(jobs["target_path"], sandbox)).to_pylist()
    assert sorted((r["run_id"], r["job_status"], r["carried_forward"]) for r in sandbox_jobs) == [
        ("day-1", "COMPLETED", True),
        ("day-2", "FAILED", False),
    ]
    rows = details.filter(pc.equal(details["target_path"], sandbox))
    assert set(rows["run_id"].to_pylist()) == {"day-1"}
    assert set(rows["data_age_days"].to_pylist()) == {1}


def test_the_next_runs_targets_carry_how_long_their_last_report_took(s3: Any, demo_org: OrganizationSpec) -> None:
    # Given day 1 collected every target, IAM's creation and completion dates in report_jobs
    run_by_hand(s3, "day-1", DAY)
    _, jobs = snapshot(s3, day(0)[0])
    took = {
        (r["target_path"], r["policy_id"]): round(
            (r["job_completion_date"] - r["job_creation_date"]).total_seconds(), 2
        )
        for r in jobs.to_pylist()
    }
    # When day 2 is planned
    _, manifest = discover_run(s3, "day-2", day(1)[1], None)
    # Then each planned target carries its own last report time, for its first read
    planned = [Target.model_validate(t) for batch in manifest for t in batch["targets"]]
    assert planned
    assert {t.key: t.expected_seconds for t in planned} == {t.key: took[t.key] for t in planned}
    assert len(set(took.values())) > 1  # the emulator's reports take different times
