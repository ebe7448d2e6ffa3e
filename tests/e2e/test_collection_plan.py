"""Days through the deployed definition: the first run collects every target; the next day's run collects
root, OUs and its fair share of accounts ahead of their day, carries the other accounts forward, and its
partition holds every target exactly once. And a change in an OU's used services brings the accounts under it
in on the day after the OU's report shows it.

moto's interpreter gives an execution its wall-clock StartTime (the run's `dt`), and its Wait states really
sleep, so two calendar days cannot pass between executions. The first day's snapshot is therefore moved back
one day after its run (keys to the earlier `dt`, its times one day earlier), as if it had run yesterday; the
second execution then plans from it as a daily run would (for a third, both are moved back once more). The
emulator's clock, which dates the reports and their tracking period, is moved on a day by the test where a
day must pass for IAM. Longer sequences are covered in `tests/integration/test_collection_plan.py` on the
emulator's clock, the spreading over many days in `tests/unit/test_plan.py`.
"""

from __future__ import annotations

import pyarrow.compute as pc

from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.collect.plan import fair_share
from tests.activity_swap import next_day, prepare_swap
from tests.e2e.conftest import FAST, Collector, move_back_one_day
from tests.helpers import organization_targets, ou_id, subtree_accounts


def test_the_next_days_run_collects_root_ous_and_a_share_ahead_and_carries_the_other_accounts_once_each(
    collector: Collector, demo_org: OrganizationSpec
) -> None:
    targets = organization_targets(demo_org)
    always = 1 + len(demo_org.ous)
    share = fair_share(targets - always, 7)
    # Day 1: every target collected
    first = collector.run()
    assert first.status == "SUCCEEDED", first.cause
    assert first.run["targets"] == targets
    yesterday = move_back_one_day(collector, first.run["dt"])
    # Day 2: root and OUs collected, the fair share of accounts ahead of their day, the other accounts (one day
    # old, cadence 7) carried forward
    second = collector.run()
    assert second.status == "SUCCEEDED", second.cause
    assert second.run["targets"] == always + share
    tables = collector.tables()
    today = second.run["dt"]
    jobs = [j for j in tables["report_jobs"].to_pylist() if j["dt"] == today]
    details = tables["access_details"].filter(pc.equal(tables["access_details"]["dt"], today))
    # Every target exactly once, and each one's rows from its one completed report
    assert len(jobs) == len({(j["target_path"], j["policy_id"]) for j in jobs}) == targets
    assert {j["job_status"] for j in jobs} == {"COMPLETED"}
    assert sum(j["plan"] == "AHEAD" for j in jobs) == share
    for job in jobs:
        rows = details.filter(pc.equal(details["job_id"], job["job_id"]))
        assert rows.num_rows == job["services_accessible"]
        carried = job["plan"] == "NOT_DUE"
        assert job["plan"] in (("NOT_DUE", "AHEAD") if job["target_type"] == "ACCOUNT" else ("ROOT_OR_OU",))
        assert job["carried_forward"] is carried
        assert job["data_age_days"] == (1 if carried else 0)
        assert set(rows["carried_forward"].to_pylist()) <= {carried}
        assert (job["collected_at"].date().isoformat() == yesterday) is carried
    # The alert compares with yesterday: a carried row is yesterday's row, never newly unused; nothing is stale
    alert = collector.alerts()[-1]
    assert "STALE DATA" not in alert["Message"]
    assert alert["MessageAttributes"]["newly_unused_services"]["Value"] == "0"


def test_a_day_after_an_ous_report_shows_a_swap_of_used_services_the_accounts_under_it_are_collected(
    collector: Collector, demo_org: OrganizationSpec, store: AccessReportStore
) -> None:
    # Given runs of the Security OU's subtree only (the OU and its two accounts: short runs), and an account under
    # it with a service used at the far edge of the tracking period
    security = ou_id(demo_org, "Security")
    subtree = {**FAST, "include_ids": [security]}
    swap = prepare_swap(demo_org, store, security)
    # Day 1: every target collected, Security's report with that service used
    first = collector.run(subtree)
    assert first.status == "SUCCEEDED", first.cause
    assert first.run["targets"] == 3
    day1 = move_back_one_day(collector, first.run["dt"])
    # A day passes for IAM: that service leaves the tracking period; the account uses another for the first time
    next_day(store, swap)
    # Day 2: Security collected (its report shows the swap; the plan, made from day 1 alone, cannot know) and one
    # account ahead of its day (a fair share of one)
    second = collector.run(subtree)
    assert second.status == "SUCCEEDED", second.cause
    assert second.run["targets"] == 2
    day1 = move_back_one_day(collector, day1)
    day2 = move_back_one_day(collector, second.run["dt"])
    # Day 3: planned from day 2's reports beside day 1's
    third = collector.run(subtree)
    assert third.status == "SUCCEEDED", third.cause
    jobs = collector.tables()["report_jobs"].to_pylist()
    by_day = {dt: {j["target_path"]: j for j in jobs if j["dt"] == dt} for dt in (day1, day2, third.run["dt"])}
    # Then Security's reports of days 1 and 2 are two reports with the same counts: a rule on counts sees nothing
    reports = [by_day[dt][demo_org.path(security)] for dt in (day1, day2)]
    assert len({j["job_id"] for j in reports}) == 2
    assert len({(j["services_accessible"], j["services_not_accessed"]) for j in reports}) == 1
    # And day 3 collects, as OU_CHANGED, the account day 2 left carried forward, and nothing ahead
    under = {demo_org.path(a) for a in subtree_accounts(demo_org, security)}
    waiting = {path for path in under if by_day[day2][path]["carried_forward"]}
    assert len(waiting) == 1
    assert {path: j["plan"] for path, j in by_day[third.run["dt"]].items() if j["plan"] != "NOT_DUE"} == {
        demo_org.path(security): "ROOT_OR_OU",
        **dict.fromkeys(waiting, "OU_CHANGED"),
    }
    assert {by_day[third.run["dt"]][path]["carried_forward"] for path in waiting} == {False}
