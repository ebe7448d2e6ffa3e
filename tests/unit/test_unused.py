"""Unused and newly unused services per target, the allowlists, and problem jobs, from Arrow tables."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from lambdas.collector.insight.unused import Findings, TargetFindings, find_unused
from lambdas.collector.models import JobStatus
from lambdas.collector.store.normalize import ColumnBuffer, JobContext
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS
from tests import helpers

AS_OF = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
DAYS = 90
CUTOFF = AS_OF - timedelta(days=DAYS)
PREVIOUS_AS_OF = AS_OF - timedelta(days=1)
ORG = "o-abcdefghij"
ROOT = f"{ORG}/r-ab12"
OU = f"{ROOT}/ou-ab12-cdefghij"
ACCOUNT = f"{OU}/111111111111"
# An OU whose id starts with OU's id, and an account below it: not in OU's subtree.
OU_ALIKE = f"{ROOT}/ou-ab12-cdefghijk"
OTHER_ACCOUNT = f"{OU_ALIKE}/222222222222"
POLICY = "p-abcdefgh"

Use = tuple[str, str | None, str, datetime | None]  # target path, policy id, namespace, last used


def job_context(path: str, policy: str | None, collected_at: datetime = AS_OF) -> JobContext:
    return helpers.job_context(path, collected_at=collected_at, policy=policy)


def access_details(uses: Iterable[Use], collected_at: datetime = AS_OF) -> pa.Table:
    buffer = ColumnBuffer(ACCESS_DETAILS)
    for path, policy, namespace, when in uses:
        detail = {"ServiceName": f"Service {namespace}", "ServiceNamespace": namespace, "LastAuthenticatedTime": when}
        buffer.add_access_details(job_context(path, policy, collected_at), [detail])
    return buffer.to_table()


def report_jobs(jobs: Iterable[tuple[str, JobStatus, str | None, str | None]]) -> pa.Table:
    buffer = ColumnBuffer(REPORT_JOBS)
    for path, status, code, message in jobs:
        record = {**job_context(path, None).columns(), "job_status": status.value, "error_code": code}
        record.update(error_message=message, services_accessible=None, services_not_accessed=None)
        buffer.add_row({**record, "rows_written": 0, "pages": 0, "iam_calls": 1})
    return buffer.to_table()


NO_JOBS = report_jobs([])


def find(current: pa.Table, previous: pa.Table | None = None, **options: Any) -> Findings:
    return find_unused(current, previous, NO_JOBS, as_of=AS_OF, unused_after_days=DAYS, **options)


def target_of(findings: Findings, path: str, policy: str | None = None) -> TargetFindings:
    (target,) = [t for t in findings.targets if (t.target_path, t.policy_id) == (path, policy)]
    return target


def unused_by_target(findings: Findings) -> dict[tuple[str, str | None], set[str]]:
    return {(t.target_path, t.policy_id): {s.namespace for s in t.unused} for t in findings.targets}


def test_a_service_is_unused_when_never_used_or_last_used_before_the_cutoff() -> None:
    # Given services never used, used just before the cutoff, exactly at it, and recently
    stale = CUTOFF - timedelta(microseconds=1)
    current = access_details(
        [
            (ACCOUNT, None, "never", None),
            (ACCOUNT, None, "stale", stale),
            (ACCOUNT, None, "boundary", CUTOFF),
            (ACCOUNT, None, "recent", AS_OF - timedelta(days=1)),
        ]
    )
    # When
    findings = find(current)
    # Then only the never used and the stale one are unused, never used first, with their times
    target = target_of(findings, ACCOUNT)
    assert [(s.namespace, s.name, s.last_authenticated_time) for s in target.unused] == [
        ("never", "Service never", None),
        ("stale", "Service stale", stale),
    ]
    assert (target.target_type, target.target_id, target.target_name) == (
        "ACCOUNT",
        "111111111111",
        "name of 111111111111",
    )
    assert (findings.targets_with_unused, findings.unused_services, findings.targets_checked) == (1, 2, 1)


@pytest.mark.parametrize(("days", "unused"), [(30, True), (60, False), (90, False)])
def test_the_cutoff_follows_unused_after_days(days: int, unused: bool) -> None:
    # Given a service last used 45 days before the run
    current = access_details([(ACCOUNT, None, "s3", AS_OF - timedelta(days=45))])
    # When judged with different periods
    findings = find_unused(current, None, NO_JOBS, as_of=AS_OF, unused_after_days=days)
    # Then it is unused only when the period is shorter than 45 days
    assert findings.unused_services == int(unused)


def test_the_all_scps_report_and_an_scp_report_of_one_entity_are_separate_targets() -> None:
    # Given one account reported over all SCPs (policy null) and narrowed to one SCP
    current = access_details(
        [
            (ACCOUNT, None, "s3", None),
            (ACCOUNT, None, "ec2", AS_OF),
            (ACCOUNT, POLICY, "s3", AS_OF),
            (ACCOUNT, POLICY, "ec2", None),
            (ACCOUNT, POLICY, "sqs", None),
        ]
    )
    # When
    findings = find(current)
    # Then each report is its own target with its own unused services
    assert unused_by_target(findings) == {(ACCOUNT, None): {"s3"}, (ACCOUNT, POLICY): {"ec2", "sqs"}}
    assert [(t.policy_id, t.unused_count) for t in findings.targets] == [(POLICY, 2), (None, 1)]
    assert findings.targets_checked == 2


def test_a_globally_allowlisted_namespace_never_counts() -> None:
    # Given s3 and ec2 unused on the root and an account, and an OU whose only unused service is s3
    current = access_details(
        [(path, None, namespace, None) for path in (ROOT, ACCOUNT) for namespace in ("s3", "ec2")]
        + [(OU, None, "s3", None)]
    )
    # When s3 is allowlisted for everyone
    findings = find(current, allowlist=frozenset({"s3"}))
    # Then s3 is nowhere, and the OU has nothing to report (but was checked)
    assert unused_by_target(findings) == {(ROOT, None): {"ec2"}, (ACCOUNT, None): {"ec2"}}
    assert (findings.unused_services, findings.targets_checked) == (2, 3)


def test_a_target_allowlist_covers_the_entity_and_its_subtree_only() -> None:
    # Given ec2 and s3 unused everywhere
    paths = (ROOT, OU, ACCOUNT, OU_ALIKE, OTHER_ACCOUNT)
    current = access_details([(path, None, namespace, None) for path in paths for namespace in ("ec2", "s3")])
    # When ec2 is allowlisted for OU, and s3 for the other account
    by_target = {"ou-ab12-cdefghij": frozenset({"ec2"}), "222222222222": frozenset({"s3"})}
    findings = find(current, allowlist_by_target=by_target)
    # Then OU and the account below it lose ec2; the look-alike OU, its account (but s3) and the root keep theirs
    assert unused_by_target(findings) == {
        (ROOT, None): {"ec2", "s3"},
        (OU, None): {"s3"},
        (ACCOUNT, None): {"s3"},
        (OU_ALIKE, None): {"ec2", "s3"},
        (OTHER_ACCOUNT, None): {"ec2"},
    }


def test_newly_unused_are_services_in_use_in_the_previous_snapshot_judged_at_its_own_time() -> None:
    # Given s3 last used 90.5 days before this run: inside the period when the previous run (a day earlier) looked
    s3_last_used = AS_OF - timedelta(days=90, hours=12)
    previous = access_details(
        [
            (ACCOUNT, None, "s3", s3_last_used),
            (ACCOUNT, None, "ec2", None),  # unused then as now
            (ACCOUNT, None, "dynamodb", PREVIOUS_AS_OF),  # in use then as now
        ],
        collected_at=PREVIOUS_AS_OF,
    )
    current = access_details(
        [
            (ACCOUNT, None, "s3", s3_last_used),
            (ACCOUNT, None, "ec2", None),
            (ACCOUNT, None, "iam", None),  # not in the previous snapshot
            (ACCOUNT, None, "dynamodb", PREVIOUS_AS_OF),
        ]
    )
    # When
    findings = find(current, previous)
    # Then s3 alone is newly unused; ec2 and iam are unused, but not newly
    target = target_of(findings, ACCOUNT)
    assert {s.namespace for s in target.unused} == {"s3", "ec2", "iam"}
    assert target.newly_unused == ("s3",)
    assert (findings.newly_unused_services, findings.compared_with_previous) == (1, True)


def test_newly_unused_compares_the_same_target_and_policy() -> None:
    # Given s3 in use in the previous all-SCPs report of the account only
    previous = access_details([(ACCOUNT, None, "s3", PREVIOUS_AS_OF)], collected_at=PREVIOUS_AS_OF)
    # And s3 unused now in the all-SCPs report, the SCP report and on the root
    current = access_details([(ACCOUNT, None, "s3", None), (ACCOUNT, POLICY, "s3", None), (ROOT, None, "s3", None)])
    # When
    findings = find(current, previous)
    # Then only the all-SCPs report of the account has it newly unused
    assert {(t.target_path, t.policy_id): t.newly_unused for t in findings.targets} == {
        (ACCOUNT, None): ("s3",),
        (ACCOUNT, POLICY): (),
        (ROOT, None): (),
    }


def test_a_key_repeated_in_the_previous_snapshot_is_newly_unused_once() -> None:
    # Given a previous snapshot read from two files that both carry the account's s3
    one = access_details([(ACCOUNT, None, "s3", PREVIOUS_AS_OF)], collected_at=PREVIOUS_AS_OF)
    # When s3 is unused now
    findings = find(access_details([(ACCOUNT, None, "s3", None)]), pa.concat_tables([one, one]))
    # Then it counts once
    assert (findings.unused_services, findings.newly_unused_services) == (1, 1)


def test_newly_used_are_services_unused_in_the_previous_snapshot_and_in_use_now() -> None:
    # Given yesterday: the account had ec2, s3 and gamelift unused, sqs in use; the OU had s3 unused
    previous = access_details(
        [(ACCOUNT, None, namespace, None) for namespace in ("ec2", "s3", "gamelift")]
        + [(ACCOUNT, None, "sqs", PREVIOUS_AS_OF), (OU, None, "s3", None)],
        collected_at=PREVIOUS_AS_OF,
    )
    # And today: the account uses ec2 and gamelift again (sqs still), s3 still unused; the OU uses s3 again
    current = access_details(
        [(ACCOUNT, None, namespace, AS_OF - timedelta(hours=2)) for namespace in ("ec2", "gamelift", "sqs")]
        + [(ACCOUNT, None, "s3", None), (OU, None, "s3", AS_OF - timedelta(hours=3))]
    )
    # When gamelift is allowlisted
    findings = find(current, previous, allowlist=frozenset({"gamelift"}))
    # Then ec2 is newly used on the account (gamelift is never counted, sqs was in use already)
    assert target_of(findings, ACCOUNT).newly_used == ("ec2",)
    # And the OU, with nothing unused now, is a finding for its newly used s3, but not a target with unused services
    assert (target_of(findings, OU).unused_count, target_of(findings, OU).newly_used) == (0, ("s3",))
    assert (findings.targets_with_unused, findings.unused_services, findings.newly_used_services) == (1, 1, 2)


def test_a_carried_row_is_never_newly_used() -> None:
    # Given ec2 unused in yesterday's snapshot, and in use in a report of 3 days ago carried into today's
    previous = access_details([(ACCOUNT, None, "ec2", None)], collected_at=PREVIOUS_AS_OF)
    collected = AS_OF - timedelta(days=3)
    current = carried(access_details([(ACCOUNT, None, "ec2", collected)], collected_at=collected))
    # When / Then nothing changed since the previous snapshot
    assert find(current, previous).targets == ()


def test_a_targets_allowed_services_and_the_accounts_under_a_root_or_ou_are_counted() -> None:
    # Given the root, OU and an account under OU, and another OU with one account, with a few services each
    uses: list[Use] = [(path, None, f"svc{n}", None) for path in (ROOT, OU, OU_ALIKE) for n in range(4)]
    uses += [(ACCOUNT, None, "svc0", None), (ACCOUNT, None, "svc1", AS_OF), (OTHER_ACCOUNT, None, "svc0", None)]
    # When
    findings = find(access_details(uses))
    # Then each target knows how many services its SCPs allow, and roots and OUs the accounts below them
    counts = {t.target_path: (t.unused_count, t.allowed_count, t.accounts_below) for t in findings.targets}
    assert counts == {
        ROOT: (4, 4, 2),
        OU: (4, 4, 1),
        OU_ALIKE: (4, 4, 1),
        ACCOUNT: (1, 2, 0),
        OTHER_ACCOUNT: (1, 1, 0),
    }


def test_no_services_per_target_keeps_the_counts_without_the_services() -> None:
    current = access_details([(ACCOUNT, None, f"svc{n}", None) for n in range(5)])
    findings = find(current, services_per_target=0)
    assert (target_of(findings, ACCOUNT).unused, target_of(findings, ACCOUNT).unused_count) == ((), 5)


def test_every_job_failed_when_none_completed() -> None:
    # Given two failed jobs and no completed one, then the same with one completed
    failed = [(f"{OU}/{n:012d}", JobStatus.FAILED, "AccessDenied", "denied") for n in (1, 2)]
    only_failed = find_unused(access_details([]), None, report_jobs(failed), as_of=AS_OF, unused_after_days=DAYS)
    completed = report_jobs([*failed, (ACCOUNT, JobStatus.COMPLETED, None, None)])
    some_completed = find_unused(access_details([]), None, completed, as_of=AS_OF, unused_after_days=DAYS)
    # Then only the first is a run whose jobs all failed
    assert (only_failed.completed_jobs, only_failed.all_jobs_failed) == (0, True)
    assert (some_completed.completed_jobs, some_completed.all_jobs_failed) == (1, False)
    assert not find(access_details([])).all_jobs_failed  # no job at all is no failure


def test_without_a_previous_snapshot_nothing_is_newly_unused() -> None:
    # Given unused services and no previous snapshot
    current = access_details([(ACCOUNT, None, "s3", None), (ROOT, None, "ec2", CUTOFF - timedelta(days=1))])
    # When
    findings = find(current, None)
    # Then they are unused, none newly, and nothing is newly used
    assert (findings.unused_services, findings.newly_unused_services, findings.compared_with_previous) == (2, 0, False)
    assert findings.newly_used_services == 0


def test_problem_jobs_are_the_jobs_that_did_not_complete() -> None:
    # Given one job of each final status
    final = [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.INCOMPLETE]
    final += [JobStatus.NOT_STARTED, JobStatus.NOT_COLLECTED]
    paths = [f"{OU}/{n:012d}" for n in range(len(final))]
    jobs = report_jobs(
        [
            (path, status, f"Code{status.value}", f"message of {status.value}")
            for path, status in zip(paths, final, strict=True)
        ]
    )
    # When
    findings = find_unused(access_details([]), None, jobs, as_of=AS_OF, unused_after_days=DAYS)
    # Then every job but the completed one is a problem, with its target and error
    assert findings.problem_jobs == 5
    assert [(p.target_path, p.status, p.error_code, p.error_message) for p in findings.problems] == [
        (path, status.value, f"Code{status.value}", f"message of {status.value}")
        for path, status in zip(paths[1:], final[1:], strict=True)
    ]
    assert {p.target_type for p in findings.problems} == {"ACCOUNT"}


def test_targets_are_ordered_by_most_unused_then_path() -> None:
    # Given the root with 2 unused services, and an OU and an account below it with 3 each
    current = access_details(
        [(ROOT, None, f"svc{n}", None) for n in range(2)]
        + [(path, None, f"svc{n}", None) for path in (ACCOUNT, OU) for n in range(3)]
    )
    # When
    findings = find(current)
    # Then the most unused come first, ties in path order
    assert [(t.target_path, t.unused_count) for t in findings.targets] == [(OU, 3), (ACCOUNT, 3), (ROOT, 2)]


def test_services_per_target_keeps_the_least_used_first_and_the_full_count() -> None:
    # Given five unused services: two never used, three last used on different days
    current = access_details(
        [(ACCOUNT, None, namespace, None) for namespace in ("zeta", "alpha")]
        + [(ACCOUNT, None, f"used{days}", CUTOFF - timedelta(days=days)) for days in (1, 30, 10)]
    )
    # When at most three are kept
    findings = find(current, services_per_target=3)
    # Then the never used (by name) and then the least recently used are kept, and the count is complete
    target = target_of(findings, ACCOUNT)
    assert [s.namespace for s in target.unused] == ["alpha", "zeta", "used30"]
    assert (target.unused_count, findings.unused_services) == (5, 5)


def test_an_empty_snapshot_has_no_findings() -> None:
    findings = find(access_details([]), access_details([]))
    assert (findings.targets, findings.problems, findings.targets_checked) == ((), (), 0)


def test_the_findings_match_a_row_by_row_reference_on_random_snapshots() -> None:
    # Given random snapshots: targets with and without a policy, times around both cutoffs, allowlists
    rng = random.Random(20261124)
    targets = [(path, policy) for path in (ROOT, OU, ACCOUNT, OU_ALIKE, OTHER_ACCOUNT) for policy in (None, POLICY)]
    namespaces = [f"svc{n}" for n in range(30)]
    allowlist, by_target = frozenset({"svc0"}), {"ou-ab12-cdefghij": frozenset({"svc1", "svc2"})}

    def snapshot(as_of: datetime) -> list[Use]:
        times = [None, as_of, as_of - timedelta(days=DAYS), as_of - timedelta(days=DAYS, seconds=1)]
        times += [as_of - timedelta(days=rng.randrange(400)) for _ in range(4)]
        return [
            (path, policy, ns, rng.choice(times)) for path, policy in targets for ns in namespaces if rng.random() < 0.8
        ]

    before, now = snapshot(PREVIOUS_AS_OF), snapshot(AS_OF)
    # When
    findings = find(
        access_details(now),
        access_details(before, collected_at=PREVIOUS_AS_OF),
        allowlist=allowlist,
        allowlist_by_target=by_target,
    )

    # Then they are what a plain loop over the rows finds
    def is_unused(when: datetime | None, as_of: datetime) -> bool:
        return when is None or when < as_of - timedelta(days=DAYS)

    def listed(path: str, ns: str) -> bool:
        return ns in allowlist or any(ns in names and tid in path.split("/") for tid, names in by_target.items())

    used_before = {(p, pol, ns) for p, pol, ns, when in before if not is_unused(when, PREVIOUS_AS_OF)}
    unused_before = {(p, pol, ns) for p, pol, ns, when in before if is_unused(when, PREVIOUS_AS_OF)}
    expected: dict[tuple[str, str | None], set[str]] = {}
    expected_newly: dict[tuple[str, str | None], set[str]] = {}
    expected_used: dict[tuple[str, str | None], set[str]] = {}
    for path, policy, ns, when in now:
        if listed(path, ns):
            continue
        if is_unused(when, AS_OF):
            expected.setdefault((path, policy), set()).add(ns)
            if (path, policy, ns) in used_before:
                expected_newly.setdefault((path, policy), set()).add(ns)
        elif (path, policy, ns) in unused_before:
            expected_used.setdefault((path, policy), set()).add(ns)
    assert {key: names for key, names in unused_by_target(findings).items() if names} == expected
    assert {(t.target_path, t.policy_id): set(t.newly_unused) for t in findings.targets if t.newly_unused} == (
        expected_newly
    )
    assert {(t.target_path, t.policy_id): set(t.newly_used) for t in findings.targets if t.newly_used} == (
        expected_used
    )
    assert findings.unused_services == sum(len(names) for names in expected.values())
    # the data exercises both comparisons at all
    assert findings.newly_unused_services > 0
    assert findings.newly_used_services > 0


def carried(table: pa.Table) -> pa.Table:
    """The rows as finalize carries them forward from an earlier report."""
    index = table.schema.get_field_index("carried_forward")
    return table.set_column(index, table.schema.field(index), pa.array([True] * table.num_rows))


def test_a_carried_row_is_judged_against_its_own_collected_at_and_is_never_newly_unused() -> None:
    # Given an account's report of 5 days ago, carried into today's snapshot, and the same in yesterday's
    collected = AS_OF - timedelta(days=5)
    uses = [(ACCOUNT, None, "s3", collected - timedelta(days=DAYS - 2)), (ACCOUNT, None, "ec2", None)]
    current = carried(access_details(uses, collected_at=collected))
    # When compared with a previous snapshot in which ec2 was (say, by an older report) in use
    previous = access_details([(ACCOUNT, None, "ec2", PREVIOUS_AS_OF)], collected_at=PREVIOUS_AS_OF)
    findings = find(current, previous)
    # Then s3, used 88 days before its report, is not unused (as of today it would be 93 days)
    assert unused_by_target(findings) == {(ACCOUNT, None): {"ec2"}}
    # And nothing carried is newly unused: the carried row says nothing new since the previous snapshot
    assert findings.newly_unused_services == 0
    # While the same rows collected fresh today would be newly unused
    assert find(access_details([(ACCOUNT, None, "ec2", None)]), previous).newly_unused_services == 1


def test_data_older_than_the_cadence_and_deferred_targets_are_stale_and_not_problem_jobs() -> None:
    # Given today's report_jobs: a fresh account, one carried 6 days, one carried 9 days, one deferred unseen
    fresh, six, nine, deferred = (f"{OU}/{n * 111111111111:012d}" for n in range(1, 5))
    jobs = pa.concat_tables(
        [
            report_jobs([(fresh, JobStatus.COMPLETED, None, None)]),
            with_age(report_jobs([(six, JobStatus.COMPLETED, None, None)]), 6),
            with_age(report_jobs([(nine, JobStatus.COMPLETED, None, None)]), 9),
            report_jobs([(deferred, JobStatus.DEFERRED, None, None)]),
        ]
    )
    # When judged with a cadence of 7 days
    findings = find_unused(access_details([]), None, jobs, as_of=AS_OF, unused_after_days=DAYS, stale_after_days=7)
    # Then the deferred one (never collected) and the 9-day-old one are stale, oldest first; no problem job
    assert [(t.target_path, t.data_age_days) for t in findings.stale] == [(deferred, None), (nine, 9)]
    assert findings.problem_jobs == 0
    # And without a cadence nothing is judged stale
    assert find_unused(access_details([]), None, jobs, as_of=AS_OF, unused_after_days=DAYS).stale == ()


def with_age(jobs: pa.Table, days: int) -> pa.Table:
    index = jobs.schema.get_field_index("data_age_days")
    return jobs.set_column(index, jobs.schema.field(index), pa.array([days] * jobs.num_rows, pa.int32()))
