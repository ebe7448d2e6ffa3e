"""The collection plan: root and OUs every run, accounts on their cadence (new, then under a changed OU,
then stalest, then ahead of their day up to a fair share), no more than the run's capacity; the load spread
evenly over the days; an OU's report changed by its sets of services; and the run's JSON round trip."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pyarrow as pa
import pytest

from lambdas.collector.collect.plan import (
    History,
    Plan,
    Reason,
    ServiceSets,
    capacity,
    fair_share,
    make_plan,
    report_changed,
    service_sets,
)
from lambdas.collector.models import Target, TargetType
from lambdas.collector.store.schema import ACCESS_DETAILS

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
    # Given an account last collected `days_ago` days ago, with a cadence of 7 days, and a staler due account
    # that is the run's fair share by itself (two accounts over six days: one a run)
    acct, staler = account(1), account(2)
    history = History({acct.key: collected(days_ago), staler.key: collected(10)}, {})
    # When planned
    plan = plan_of([ROOT, OU_A, acct, staler], history)
    # Then it is due from 6 days on (so that no data is ever older than the cadence); root and OUs always
    assert reasons(plan) == {
        ROOT.id: Reason.ROOT_OR_OU,
        OU_A.id: Reason.ROOT_OR_OU,
        acct.id: reason,
        staler.id: Reason.DUE,
    }


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
    acct, due = account(1), account(2, OU_B)  # the due account is the run's fair share
    history = History({acct.key: collected(0, hour=9), due.key: collected(6)}, {OU_A.id: collected(0, hour=3)})
    assert reasons(plan_of([ROOT, OU_A, OU_B, acct, due], history)) == {
        ROOT.id: Reason.ROOT_OR_OU,
        OU_A.id: Reason.ROOT_OR_OU,
        OU_B.id: Reason.ROOT_OR_OU,
        acct.id: Reason.NOT_DUE,
        due.id: Reason.DUE,
    }


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


@pytest.mark.parametrize("room", [0, 1, 1000])
def test_an_accounts_only_run_with_nothing_due_still_collects_one_target(room: int) -> None:
    accounts = [account(n) for n in range(1, 3)]
    plan = plan_of(accounts, History({a.key: collected(1) for a in accounts}, {}), room=room)
    assert [reasons(plan)[t.id] for t in plan.planned] == [Reason.AHEAD]


def test_the_capacity_is_the_budget_over_a_reports_time_per_admitted_job_or_the_call_rate() -> None:
    assert capacity(72_000, 10, 1, 20) == 7_200  # IAM's observed cap of one job: the sum of report times
    assert capacity(72_000, 10, 5, 20) == 36_000
    assert capacity(72_000, 10, 100, 20) == 720_000  # two calls per target at 20 per second
    assert capacity(72_000, 0, 1, 1) == 36_000


def test_the_plan_survives_its_json_round_trip() -> None:
    plan = plan_of([ROOT, OU_A, account(1)], History.empty(), room=1)
    assert Plan.from_json(plan.as_json()) == plan


# -- spreading the load over the cadence ---------------------------------------------------------------


def test_not_due_accounts_are_collected_ahead_stalest_first_up_to_the_fair_share() -> None:
    # Given 13 accounts with a cadence of 7 (a fair share of ceil(13 / 6) = 3 a run): one due, the others
    # not due, two of them equally the stalest of those left
    due, stalest, tie_first, tie_second, *fresh = [account(n) for n in range(1, 14)]
    ages = {due: 6, stalest: 5, tie_first: 4, tie_second: 4} | {a: 1 + n % 3 for n, a in enumerate(fresh)}
    history = History({a.key: collected(days) for a, days in ages.items()}, {})
    # When planned
    plan = plan_of([ROOT, *ages], history)
    # Then the due account goes in and two more ahead of their day, the stalest, a tie by path
    assert fair_share(13, 7) == 3
    assert {t.id: r for t, r in ((d.target, d.reason) for d in plan.decisions) if r.planned} == {
        ROOT.id: Reason.ROOT_OR_OU,
        due.id: Reason.DUE,
        stalest.id: Reason.AHEAD,
        tie_first.id: Reason.AHEAD,
    }
    assert {reasons(plan)[a.id] for a in [tie_second, *fresh]} == {Reason.NOT_DUE}


def test_the_fair_share_never_goes_beyond_the_capacity_and_never_displaces_an_owed_account() -> None:
    accounts = [account(n) for n in range(1, 13)]  # a fair share of 2 a run at a cadence of 7
    # Room for one account: one goes ahead, the others are not due (nothing is owed, so nothing is over budget)
    history = History({a.key: collected(1) for a in accounts}, {})
    assert Counter(reasons(plan_of([ROOT, *accounts], history, room=1 + 1)).values()) == {
        Reason.ROOT_OR_OU: 1,
        Reason.AHEAD: 1,
        Reason.NOT_DUE: 11,
    }
    # Three due, more than the share: all three go in and none ahead
    history = History({a.key: collected(6 if n < 3 else 1) for n, a in enumerate(accounts)}, {})
    assert Counter(reasons(plan_of([ROOT, *accounts], history)).values()) == {
        Reason.ROOT_OR_OU: 1,
        Reason.DUE: 3,
        Reason.NOT_DUE: 9,
    }
    # Three due and room for two: two due, one over budget, none ahead
    assert Counter(reasons(plan_of([ROOT, *accounts], history, room=1 + 2)).values()) == {
        Reason.ROOT_OR_OU: 1,
        Reason.DUE: 2,
        Reason.OVER_BUDGET: 1,
        Reason.NOT_DUE: 9,
    }


@pytest.mark.parametrize(("accounts", "refresh_days", "share"), [(7, 7, 2), (12, 7, 2), (13, 7, 3), (1, 7, 1)])
def test_the_fair_share_is_the_accounts_over_the_days_between_two_collections(
    accounts: int, refresh_days: int, share: int
) -> None:
    # An account is due a day early, so it comes round every refresh_days - 1 days; every day below two
    assert fair_share(accounts, refresh_days) == share
    assert fair_share(accounts, 2) == fair_share(accounts, 1) == accounts


@dataclass(frozen=True)
class Day:
    """One simulated run: the accounts it collected by reason, and what the day's partition then holds."""

    reasons: Counter[Reason]
    oldest: int  # the largest data_age_days of a collected account in the day's partition
    waiting: int  # accounts never collected yet

    @property
    def collected(self) -> int:
        return sum(n for reason, n in self.reasons.items() if reason.planned)


def simulate(accounts: int, *, days: int, refresh_days: int = 7, room: int | None = None) -> list[Day]:
    """Daily runs from a first day where every account is new, each plan's decisions fed back as the
    next day's history (each run collects what it planned, at 03:00)."""
    members = [account(n) for n in range(1, accounts + 1)]
    targets = [ROOT, OU_A, *members]
    collected_at: dict[tuple[str, str | None], datetime] = {}
    out = []
    for n in range(days):
        today = TODAY + timedelta(days=n)
        plan = make_plan(
            targets,
            History(dict(collected_at), {}),
            today=today,
            refresh_days=refresh_days,
            capacity=2 + (accounts if room is None else room),
        )
        run = datetime.combine(today, time(3), UTC)
        collected_at |= {t.key: run for t in plan.planned if t.type is TargetType.ACCOUNT}
        ages = [(today - collected_at[a.key].date()).days for a in members if a.key in collected_at]
        out.append(
            Day(
                Counter(d.reason for d in plan.decisions if d.target.type is TargetType.ACCOUNT),
                max(ages, default=0),
                accounts - len(collected_at),
            )
        )
    return out


@pytest.mark.parametrize(
    ("accounts", "refresh_days"), [(12, 7), (50, 7), (100, 7), (1000, 7), (30, 3), (40, 14), (5, 1)]
)
def test_after_a_first_day_of_new_accounts_the_daily_load_settles_on_an_even_share(
    accounts: int, refresh_days: int
) -> None:
    # Given a first day where every account is new and the capacity allows them all
    # When runs follow day after day for five cadences
    days = simulate(accounts, days=5 * refresh_days, refresh_days=refresh_days)
    # Then day one collects them all, as new
    assert days[0].reasons == {Reason.NEW: accounts}
    # And after one cadence every day collects the same number, the fair share: accounts over the days
    # between two collections (refresh_days - 1, an account being due a day early), rounded up
    steady = [day.collected for day in days[refresh_days:]]
    assert set(steady) == {fair_share(accounts, refresh_days)}
    assert accounts / refresh_days <= steady[0] <= accounts / max(1, refresh_days - 1) + 1
    # And no day's partition holds data older than the cadence (an account is collected a day early at most)
    assert max(day.oldest for day in days) <= max(0, refresh_days - 2)


def test_at_the_fair_share_the_due_accounts_never_outnumber_a_days_share() -> None:
    # Why the share divides by refresh_days - 1: 100 accounts at 15 a day (100 / 7 rounded up) are not all
    # collected again within the 6 days after which they are due, so 25 would come due together every sixth
    # day. At 17 a day, days 2 to 6 take 85 of day one's accounts ahead, and day 7 finds the last 15 due
    # and tops them up with 2 more ahead: the due ones never exceed a day's share.
    days = simulate(100, days=5 * 7)
    assert fair_share(100, 7) == 17
    assert [day.reasons for day in days[1:7]] == [{Reason.AHEAD: 17, Reason.NOT_DUE: 83}] * 5 + [
        {Reason.DUE: 15, Reason.AHEAD: 2, Reason.NOT_DUE: 83}
    ]
    assert {day.collected for day in days[1:]} == {17}


def test_a_first_day_with_room_for_part_clears_its_backlog_then_spreads_evenly() -> None:
    # Given 100 new accounts (cadence 7, a fair share of 17) and room for 40 a run
    days = simulate(100, days=5 * 7, room=40)
    # Then the first days collect what fits, new accounts first, until none is left waiting
    assert [day.collected for day in days[:3]] == [40, 40, 20]
    assert [day.waiting for day in days[:3]] == [60, 20, 0]
    assert [day.reasons[Reason.OVER_BUDGET] for day in days[:3]] == [60, 20, 0]
    cleared = 3
    assert all(Reason.NEW not in day.reasons and Reason.OVER_BUDGET not in day.reasons for day in days[cleared:])
    # And once the backlog is gone the load is the fair share every day: the first days' lumps dissolve
    # ahead of their due day instead of coming due together
    assert {day.collected for day in days[cleared + 7 :]} == {17}
    assert max(day.oldest for day in days) <= 7 - 2


# -- an OU's report changed: its sets of services ------------------------------------------------------


def test_a_swap_of_used_services_with_equal_counts_is_a_change() -> None:
    allowed = frozenset({"ec2", "s3", "sqs", "sns"})
    before = ServiceSets(allowed, used=frozenset({"ec2", "s3"}))
    after = ServiceSets(allowed, used=frozenset({"ec2", "sqs"}))  # s3 newly unused, sqs newly used
    assert (len(after.allowed), len(after.used)) == (len(before.allowed), len(before.used))
    assert report_changed(before, after)


def test_the_same_services_allowed_and_used_are_no_change() -> None:
    sets = ServiceSets(frozenset({"ec2", "s3"}), frozenset({"s3"}))
    assert not report_changed(sets, ServiceSets(frozenset({"s3", "ec2"}), frozenset({"s3"})))
    assert not report_changed(ServiceSets(), ServiceSets())  # an OU whose SCPs allow nothing, both times


def test_a_newly_allowed_service_is_a_change_though_nobody_uses_it() -> None:
    before = ServiceSets(frozenset({"ec2", "s3"}), frozenset({"s3"}))
    assert report_changed(before, ServiceSets(frozenset({"ec2", "s3", "bedrock"}), frozenset({"s3"})))  # an SCP change
    assert report_changed(before, ServiceSets(frozenset({"s3"}), frozenset({"s3"})))  # no longer allowed


def test_the_service_sets_are_read_from_the_wanted_ou_reports_rows_only() -> None:
    # Given access_details rows of two OU reports, an account's report and an OU report not asked for
    used = collected(1)
    rows = [
        ("ORGANIZATIONAL_UNIT", "job-ou-a", "s3", used),
        ("ORGANIZATIONAL_UNIT", "job-ou-a", "ec2", None),
        ("ORGANIZATIONAL_UNIT", "job-ou-b", "ec2", None),
        ("ACCOUNT", "job-ou-a", "sqs", used),  # not an OU's row, whatever its job id says
        ("ORGANIZATIONAL_UNIT", "job-elsewhere", "sns", used),
    ]
    columns = ["target_type", "job_id", "service_namespace", "last_authenticated_time"]
    schema = pa.schema([ACCESS_DETAILS.arrow_schema.field(name) for name in columns])
    table = pa.Table.from_pylist([dict(zip(columns, row, strict=True)) for row in rows], schema)
    # When the wanted reports' sets are taken, from the table in two files
    sets = service_sets([table.slice(0, 2), table.slice(2)], {"job-ou-a", "job-ou-b", "job-without-rows"})
    # Then each wanted report has its services allowed and used; a report without rows is absent (empty)
    assert sets == {
        "job-ou-a": ServiceSets(frozenset({"s3", "ec2"}), frozenset({"s3"})),
        "job-ou-b": ServiceSets(frozenset({"ec2"}), frozenset()),
    }
