"""The collection plan: root and OUs every run, accounts on their cadence (new, then under a changed OU,
then stalest), no more than the run's capacity, and the run's JSON round trip."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from lambdas.collector.collect.plan import History, Plan, Reason, capacity, make_plan
from lambdas.collector.models import Target, TargetType

TODAY = date(2026, 11, 24)
ORG = "o-abcdefghij"
ROOT = Target(path=f"{ORG}/r-ab12", type=TargetType.ROOT, id="r-ab12")
OU_A = Target(path=f"{ROOT.path}/ou-ab12-aaaaaaaa", type=TargetType.ORGANIZATIONAL_UNIT, id="ou-ab12-aaaaaaaa")
OU_B = Target(path=f"{ROOT.path}/ou-ab12-bbbbbbbb", type=TargetType.ORGANIZATIONAL_UNIT, id="ou-ab12-bbbbbbbb")


def account(n: int, ou: Target = OU_A) -> Target:
    account_id = f"{n:012d}"
    return Target(path=f"{ou.path}/{account_id}", type=TargetType.ACCOUNT, id=account_id)


def collected(days_ago: int, hour: int = 3) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time(), UTC).replace(hour=hour)


def reasons(plan: Plan) -> dict[str, Reason]:
    return {d.target.id: d.reason for d in plan.decisions}


def plan_of(targets: list[Target], history: History, *, refresh_days: int = 7, room: int = 1000) -> Plan:
    return make_plan(targets, history, today=TODAY, refresh_days=refresh_days, capacity=room)


@pytest.mark.parametrize(
    ("days_ago", "reason"), [(0, Reason.NOT_DUE), (5, Reason.NOT_DUE), (6, Reason.DUE), (9, Reason.DUE)]
)
def test_an_account_is_due_once_its_data_is_the_cadence_less_one_day_old(days_ago: int, reason: Reason) -> None:
    # Given an account last collected `days_ago` days ago, with a cadence of 7 days
    acct = account(1)
    history = History({acct.key: collected(days_ago)}, {})
    # When planned
    plan = plan_of([ROOT, OU_A, acct], history)
    # Then it is due from 6 days on (so that no data is ever older than the cadence); root and OUs always
    assert reasons(plan) == {ROOT.id: Reason.ROOT_OR_OU, OU_A.id: Reason.ROOT_OR_OU, acct.id: reason}


def test_a_cadence_of_one_day_collects_every_account_every_run() -> None:
    acct = account(1)
    plan = plan_of([ROOT, acct], History({acct.key: collected(0)}, {}), refresh_days=1)
    assert reasons(plan)[acct.id] is Reason.DUE


def test_new_accounts_come_first_then_accounts_under_a_changed_ou_then_the_stalest() -> None:
    # Given a new account, an account under an OU whose report changed after its data, and due accounts
    new, changed, stalest, stale, fresh_under_b = (
        account(1, OU_B),
        account(2),
        account(3, OU_B),
        account(4, OU_B),
        account(5, OU_B),
    )
    history = History(
        {
            changed.key: collected(2),
            stalest.key: collected(30),
            stale.key: collected(8),
            fresh_under_b.key: collected(1),
        },
        {OU_A.id: collected(1)},  # OU A's latest report (a day ago) differs from the one before
    )
    targets = [ROOT, OU_A, OU_B, stale, fresh_under_b, stalest, changed, new]
    # When the run has room for three accounts beyond root and OUs
    plan = plan_of(targets, history, room=3 + 3)
    # Then new, changed and the stalest due account are planned; the other due one is over budget
    assert reasons(plan) == {
        ROOT.id: Reason.ROOT_OR_OU,
        OU_A.id: Reason.ROOT_OR_OU,
        OU_B.id: Reason.ROOT_OR_OU,
        new.id: Reason.NEW,
        changed.id: Reason.OU_CHANGED,
        stalest.id: Reason.DUE,
        stale.id: Reason.OVER_BUDGET,
        fresh_under_b.id: Reason.NOT_DUE,
    }
    assert plan.planned == [ROOT, OU_A, OU_B, stalest, changed, new]  # the selection's order
    assert plan.counts() == {
        "planned": {"DUE": 1, "NEW": 1, "OU_CHANGED": 1, "ROOT_OR_OU": 3},
        "deferred": {"NOT_DUE": 1, "OVER_BUDGET": 1},
    }


def test_an_account_collected_after_its_ous_change_is_not_pulled_forward() -> None:
    acct = account(1)
    history = History({acct.key: collected(0, hour=9)}, {OU_A.id: collected(0, hour=3)})
    assert reasons(plan_of([ROOT, OU_A, acct], history))[acct.id] is Reason.NOT_DUE


def test_root_and_ous_are_planned_even_beyond_the_capacity_and_accounts_wait() -> None:
    accounts = [account(n) for n in range(1, 4)]
    plan = plan_of([ROOT, OU_A, OU_B, *accounts], History.empty(), room=2)
    assert plan.planned == [ROOT, OU_A, OU_B]
    assert {reasons(plan)[a.id] for a in accounts} == {Reason.OVER_BUDGET}


def test_the_capacity_cut_off_keeps_the_stalest_and_defers_the_rest_to_the_next_run() -> None:
    # Given ten due accounts of different ages and room for four
    accounts = [account(n) for n in range(1, 11)]
    history = History({a.key: collected(6 + n) for n, a in enumerate(accounts)}, {})
    plan = plan_of([ROOT, *accounts], history, room=1 + 4)
    # Then the four stalest are planned; the six others are the next run's stalest, so its first work
    assert [t.id for t in plan.planned if t.type is TargetType.ACCOUNT] == [a.id for a in accounts[6:]]
    assert {reasons(plan)[a.id] for a in accounts[:6]} == {Reason.OVER_BUDGET}


def test_an_accounts_only_run_with_nothing_due_still_collects_one_target() -> None:
    accounts = [account(n) for n in range(1, 3)]
    plan = plan_of(accounts, History({a.key: collected(1) for a in accounts}, {}))
    assert len(plan.planned) == 1


def test_the_capacity_is_the_budget_over_a_reports_time_per_admitted_job_or_the_call_rate() -> None:
    assert capacity(72_000, 10, 1, 20) == 7_200  # IAM's observed cap of one job: the sum of report times
    assert capacity(72_000, 10, 5, 20) == 36_000
    assert capacity(72_000, 10, 100, 20) == 720_000  # two calls per target at 20 per second
    assert capacity(72_000, 0, 1, 1) == 36_000


def test_the_plan_survives_its_json_round_trip() -> None:
    plan = plan_of([ROOT, OU_A, account(1)], History.empty(), room=1)
    assert Plan.from_json(plan.as_json()) == plan
