"""The alert message: subject, the body a person reads, attributes for filters, and SNS's size limit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from iam_report_emulator.access_reports import ACCESS_DENIED, INVALID_PATH, INVALID_POLICY
from iam_report_emulator.permissions import reads_needed
from lambdas.collector.insight.unused import Findings, ProblemJob, StaleTarget, TargetFindings, UnusedService
from lambdas.collector.notify.alert_message import (
    SNS_MAX_BYTES,
    AlertMessage,
    Severity,
    compose,
    severity_of,
    should_publish,
)
from lambdas.collector.notify.fixes import FIXES, REPORT_JOB_READS, SOME_REPORTER_ROLE

AS_OF = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
ORG, DT, RUN = "o-abcdefghij", "2026-11-24", "run-20261124"
OU = f"{ORG}/r-ab12/ou-ab12-cdefghij"


def service(namespace: str, days_ago: int | None = None) -> UnusedService:
    when = None if days_ago is None else AS_OF - timedelta(days=days_ago)
    return UnusedService(namespace, f"Service {namespace}", when)


def target(
    account: int,
    services: Sequence[UnusedService],
    *,
    count: int | None = None,
    newly: tuple[str, ...] = (),
    name: str | None = None,
    policy: str | None = None,
) -> TargetFindings:
    account_id = f"{account:012d}"
    return TargetFindings(
        target_path=f"{OU}/{account_id}",
        target_type="ACCOUNT",
        target_id=account_id,
        target_name=name if name is not None else f"account {account}",
        policy_id=policy,
        unused_count=len(services) if count is None else count,
        unused=tuple(services),
        newly_unused=newly,
    )


def problem(account: int, status: str = "FAILED", message: str = "Access denied") -> ProblemJob:
    account_id = f"{account:012d}"
    return ProblemJob(
        target_path=f"{OU}/{account_id}",
        target_type="ACCOUNT",
        target_id=account_id,
        target_name=f"account {account}",
        policy_id=None,
        status=status,
        error_code="AccessDenied" if status == "FAILED" else None,
        error_message=message if status == "FAILED" else None,
    )


def findings(
    targets: Sequence[TargetFindings] = (), problems: Sequence[ProblemJob] = (), *, previous: bool = True
) -> Findings:
    return Findings(
        as_of=AS_OF,
        unused_after_days=90,
        targets_checked=max(len(targets), 1) + 10,
        compared_with_previous=previous,
        targets=tuple(targets),
        problems=tuple(problems),
    )


def message(
    of: Findings, *, org: str = ORG, max_targets: int = 25, top_services: int = 10, reporter_role: str | None = None
) -> AlertMessage:
    return compose(
        of,
        organization_id=org,
        dt=DT,
        run_id=RUN,
        max_targets=max_targets,
        top_services=top_services,
        reporter_role=reporter_role,
    )


def test_the_subject_sums_up_the_findings() -> None:
    # Given 42 unused services on 12 targets, 3 of them newly unused, and a failed job
    targets = [target(n, [service(f"svc{i}") for i in range(4 if n < 6 else 3)]) for n in range(12)]
    targets[0] = target(0, [service(f"svc{i}") for i in range(4)], newly=("svc0", "svc1", "svc2"))
    # When
    subject = message(findings(targets, [problem(99)])).subject
    # Then
    assert subject == "Org access o-abcdefghij 2026-11-24: 42 unused on 12 targets, 3 newly unused, 1 failed job"


def test_the_subject_stays_under_100_ascii_characters_however_long_its_parts() -> None:
    # Given the longest organization id and counts of a very large organization
    long_org = "o-" + "a" * 32
    many = findings([target(n, [service("s3")], count=450, newly=("s3",)) for n in range(10_000)], [problem(1)] * 9_999)
    # When
    subject = message(many, org=long_org).subject
    # Then it is cut to fit, visibly, and stays plain ASCII without control characters
    assert len(subject) < 100
    assert subject.startswith(f"Org access {long_org} {DT}: 4500000 unused on 10000 targets")
    assert subject.endswith("...")
    assert subject.isascii()
    assert subject.isprintable()


def test_nothing_to_report_says_so() -> None:
    # Given no unused services and no problem jobs
    summary = message(findings())
    # Then the subject and body say there is nothing to report, at INFO
    assert summary.subject == f"Org access {ORG} {DT}: nothing to report"
    assert "Nothing to report" in summary.body
    assert summary.severity is Severity.INFO


def test_the_body_lists_problem_jobs_first_then_targets_with_their_services() -> None:
    # Given a failed and a timed-out job, and a target with newly unused, never used and stale services
    services = [service("ec2"), service("s3", days_ago=207), service("sqs", days_ago=95)]
    account = target(1, services, newly=("s3",), name="Prod", policy="p-abcdefgh")
    body = message(findings([account], [problem(7, message="not\nallowed"), problem(8, "TIMED_OUT")])).body
    # Then the jobs come before the targets, each with its path, status and flattened error
    jobs_at, targets_at = body.index("REPORT JOBS NOT COMPLETED (2)"), body.index("TARGETS WITH UNUSED SERVICES (1")
    assert jobs_at < targets_at
    assert (
        f"- FAILED account 7 (ACCOUNT 000000000007, all SCPs)\n    {OU}/000000000007\n    AccessDenied: not allowed"
        in body
    )
    assert f"- TIMED_OUT account 8 (ACCOUNT 000000000008, all SCPs)\n    {OU}/000000000008\n" in body
    # And the target shows its name, type, policy, path, counts, newly unused and each service's last use
    assert "Prod (ACCOUNT 000000000001, SCP p-abcdefgh)" in body
    assert f"  path: {OU}/000000000001\n  3 unused, 1 newly unused\n  newly unused: s3\n" in body
    assert "  - Service ec2 (ec2): never used in 400 days\n" in body
    assert "  - Service s3 (s3): last used 2026-05-01 (207 days ago)\n" in body
    # And the footer points to the Athena tables of the day
    assert body.rstrip().endswith("TIMESTAMP '2026-08-26 06:00:00');")
    assert f"Details in Athena: tables access_details and report_jobs, partition dt = '{DT}'" in body


def test_what_exceeds_the_limits_is_counted_as_and_n_more() -> None:
    # Given 30 targets with 15 unused services each (the first with only 10 of its 50 kept by the finder)
    targets = [target(0, [service(f"svc{i:02d}") for i in range(10)], count=50)]
    targets += [target(n, [service(f"svc{i:02d}") for i in range(15)]) for n in range(1, 30)]
    # When at most 25 targets and 10 services each are shown
    body = message(findings(targets), max_targets=25, top_services=10).body
    # Then each shown target lists 10 services and counts the rest, and the remaining targets are counted
    assert body.count("  ... and 5 more unused services\n") == 24
    assert body.count("  ... and 40 more unused services\n") == 1
    assert body.count("\n  - Service ") == 250
    assert "... and 5 more targets with unused services" in body
    assert "(ACCOUNT 000000000025" not in body


def test_without_a_previous_snapshot_the_body_says_nothing_was_compared() -> None:
    body = message(findings([target(1, [service("s3")])], previous=False)).body
    assert "no previous snapshot to compare with" in body
    assert "newly unused since" not in body


def test_the_attributes_carry_severity_and_counts_for_subscription_filters() -> None:
    # Given 5 unused services on 2 targets, 2 newly unused, and 3 problem jobs
    targets = [
        target(1, [service(f"svc{i}") for i in range(3)], newly=("svc0", "svc1")),
        target(2, [service("s3")] * 2),
    ]
    # When
    attributes = message(findings(targets, [problem(7), problem(8), problem(9)])).attributes
    # Then they are in boto3's MessageAttributes format, counts as Numbers
    assert attributes == {
        "severity": {"DataType": "String", "StringValue": "CRITICAL"},
        "unused_services": {"DataType": "Number", "StringValue": "5"},
        "newly_unused_services": {"DataType": "Number", "StringValue": "2"},
        "problem_jobs": {"DataType": "Number", "StringValue": "3"},
        "targets_with_unused": {"DataType": "Number", "StringValue": "2"},
        "organization_id": {"DataType": "String", "StringValue": ORG},
        "dt": {"DataType": "String", "StringValue": DT},
    }


@pytest.mark.parametrize(
    ("unused", "newly", "problems", "expected"),
    [
        (3, 1, 1, Severity.CRITICAL),
        (0, 0, 1, Severity.CRITICAL),
        (3, 1, 0, Severity.WARNING),
        (3, 0, 0, Severity.NOTICE),
        (0, 0, 0, Severity.INFO),
    ],
)
def test_severity_is_the_most_serious_finding(unused: int, newly: int, problems: int, expected: Severity) -> None:
    services = [service(f"svc{i}") for i in range(unused)]
    of = findings([target(1, services, newly=tuple(s.namespace for s in services[:newly]))] if unused else [])
    of = Findings(**{**of.__dict__, "problems": tuple(problem(n) for n in range(problems))})
    assert severity_of(of) is expected
    assert message(of).attributes["severity"]["StringValue"] == expected.value


@pytest.mark.parametrize(
    ("unused", "newly", "problems", "min_unused", "always", "publish"),
    [
        (0, 0, 0, 1, False, False),
        (0, 0, 0, 1, True, True),
        (1, 0, 0, 1, False, True),
        (4, 0, 0, 5, False, False),
        (4, 1, 0, 5, False, True),
        (5, 0, 0, 5, False, True),
        (4, 0, 0, 5, True, True),
        (0, 0, 1, 5, False, True),
    ],
)
def test_a_message_is_published_when_a_threshold_is_met_or_a_summary_is_wanted(
    unused: int, newly: int, problems: int, min_unused: int, always: bool, publish: bool
) -> None:
    targets = [target(n, [service("s3")], newly=("s3",) if n < newly else ()) for n in range(unused)]
    of = findings(targets, [problem(n) for n in range(problems)])
    assert should_publish(of, min_unused=min_unused, always_send_summary=always) is publish


def test_a_huge_finding_set_stays_under_the_sns_limit_counting_bytes_not_characters() -> None:
    # Given 10,000 targets x 400 unused services, multi-byte names, and 10,000 failed jobs with long errors
    services = tuple(
        UnusedService(f"service-{i:03d}", "Ünïcødé sérvïcé " * 4, AS_OF - timedelta(days=100 + i) if i % 2 else None)
        for i in range(400)
    )
    targets = [
        TargetFindings(f"{OU}/{n:012d}", "ACCOUNT", f"{n:012d}", "Cömpte " * 7, None, 400, services, ("service-001",))
        for n in range(10_000)
    ]
    problems = [problem(n, message="é" * 2_000) for n in range(10_000)]
    huge = findings(targets, problems)
    # When composed with the most generous settings
    big = message(huge, max_targets=500, top_services=100)
    # Then the whole message (subject, body, attributes) fits SNS, and the budget, not max_targets, cut it
    assert big.size_bytes <= SNS_MAX_BYTES
    assert big.size_bytes > SNS_MAX_BYTES - 1_000
    assert len(big.body) < big.size_bytes - len(big.subject)  # multi-byte characters were counted as bytes
    # And it still reads as a message: counts of what was left out, and the footer at the end
    assert "more jobs (see report_jobs)" in big.body
    assert "more targets with unused services" in big.body or "more unused services" in big.body
    assert big.body.rstrip().endswith("');")
    assert big.attributes["unused_services"]["StringValue"] == "4000000"


def test_a_huge_unused_list_without_problem_jobs_lists_targets_up_to_the_budget() -> None:
    # Given 10,000 targets x 400 unused services and no problem jobs
    services = tuple(UnusedService(f"service-{i:03d}", f"Service number {i}", None) for i in range(400))
    targets = [
        TargetFindings(f"{OU}/{n:012d}", "ACCOUNT", f"{n:012d}", f"account {n}", None, 400, services, ())
        for n in range(10_000)
    ]
    # When
    big = message(findings(targets), max_targets=500, top_services=100)
    # Then it fits, shows targets in order up to the budget, and counts the others
    assert SNS_MAX_BYTES - 1_000 < big.size_bytes <= SNS_MAX_BYTES
    shown = big.body.count("  path: ")
    assert 0 < shown < 500
    assert f"... and {10_000 - shown} more targets with unused services" in big.body
    assert "(ACCOUNT 000000000000, all SCPs)" in big.body


ROLE = "arn:aws:iam::123456789012:role/OrgAccessReportReader"


def failed(account: int, code: str, error: str = "") -> ProblemJob:
    return ProblemJob(**{**problem(account).__dict__, "error_code": code, "error_message": error or None})


def test_a_job_without_the_organizations_reads_says_which_to_allow_to_which_role() -> None:
    # Given a job IAM failed because the reporter role lacks Organizations reads
    body = message(findings(problems=[failed(7, *ACCESS_DENIED)]), reporter_role=ROLE).body
    # Then under IAM's error, one line names the role and every read IAM's job makes as its caller
    assert (
        f"- FAILED account 7 (ACCOUNT 000000000007, all SCPs)\n    {OU}/000000000007\n"
        f"    {ACCESS_DENIED[0]}: {ACCESS_DENIED[1]}\n"
        f"    fix: allow {ROLE} organizations:DescribePolicy, ListChildren, ListParents, ListPoliciesForTarget, "
        "ListRoots, ListTargetsForPolicy\n"
    ) in body


def test_the_reads_in_the_fix_are_those_the_report_job_needs_with_and_without_a_policy_id() -> None:
    # The emulator decides ORGANIZATIONS_REPORT_ACCESS_DENIED from these, as IAM was observed to
    assert set(REPORT_JOB_READS) == {*reads_needed(None), *reads_needed("p-abcdefgh")}


@pytest.mark.parametrize("code", sorted(FIXES))
def test_every_known_code_gets_its_fix_on_one_line_under_the_job(code: str) -> None:
    # Given a problem job ending with that code
    body = message(findings(problems=[failed(7, code, "why")]), reporter_role=ROLE).body
    # Then one "fix:" line follows the job's error, the role named where the fix is to it
    fix = FIXES[code].replace("{role}", ROLE)
    assert f"    {code}: why\n    fix: {fix}\n" in body
    assert "\n" not in fix
    assert ("{role}" in FIXES[code]) is (ROLE in fix)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (INVALID_PATH[0], "moved or left the organization"),
        (INVALID_POLICY[0], "remove it from policy_ids"),
        ("TimedOut", "poll_max_attempts"),
        ("NotStarted", "iam_max_jobs_in_progress"),
        ("NoSuchEntity", "only to the principal that generated it"),
        ("AccessDenied", "iam:GenerateOrganizationsAccessReport"),
    ],
)
def test_the_fix_says_what_to_change(code: str, words: str) -> None:
    assert words in message(findings(problems=[failed(7, code)])).body


def test_without_the_role_the_fix_names_the_reporter_role_and_an_unknown_code_gets_no_fix() -> None:
    # Given a run context that does not name the role, and a code the table does not know
    body = message(findings(problems=[failed(7, ACCESS_DENIED[0]), failed(8, "SomethingNew", "odd")])).body
    # Then the role is named generically, and the unknown code shows IAM's words alone
    assert f"    fix: allow {SOME_REPORTER_ROLE} organizations:DescribePolicy," in body
    assert "    SomethingNew: odd\n" in body
    assert body.count("    fix: ") == 1


def test_fix_lines_for_10_000_failed_jobs_stay_under_the_sns_limit() -> None:
    # Given 10,000 jobs failed for the reporter role's permissions, the role with IAM's longest path
    role = "arn:aws:iam::123456789012:role/" + "p/" * 240 + "OrgAccessReportReader"  # 501 of 512
    problems = [failed(n, ACCESS_DENIED[0], "é" * 2_000) for n in range(10_000)]
    # When composed with the most generous settings
    big = message(findings(problems=problems), max_targets=500, reporter_role=role)
    # Then it fits, each shown job has its fix, and the rest are counted
    assert SNS_MAX_BYTES - 1_000 < big.size_bytes <= SNS_MAX_BYTES
    shown = big.body.count("\n- FAILED ")
    assert 0 < shown < 500
    assert big.body.count(f"    fix: allow {role} ") == shown
    assert f"... and {10_000 - shown} more jobs (see report_jobs)" in big.body


def stale_target(account: int, age: int | None) -> StaleTarget:
    account_id = f"{account:012d}"
    return StaleTarget(
        target_path=f"{OU}/{account_id}",
        target_type="ACCOUNT",
        target_id=account_id,
        target_name=f"account {account}",
        policy_id=None,
        data_age_days=age,
        collected_at=None if age is None else AS_OF - timedelta(days=age),
    )


def test_stale_targets_get_a_short_section_a_warning_and_stay_within_the_size_limit() -> None:
    # Given findings with nothing unused but targets whose data is older than a 7-day cadence
    stale = tuple(stale_target(n, None if n == 1 else 8 + n) for n in range(1, 20_000))
    findings = Findings(AS_OF, 90, 3, True, (), (), stale=stale, stale_after_days=7)
    # When composed within a small budget
    message = compose(findings, organization_id=ORG, dt=DT, run_id=RUN, max_targets=3, top_services=5, max_bytes=4_000)
    # Then it warns, says how many, lists the first three and counts the rest
    assert severity_of(findings) is Severity.WARNING
    assert should_publish(findings, min_unused=1, always_send_summary=False)
    assert "19999 stale" in message.subject
    assert "19999 targets with data older than 7 days" in message.body
    assert "STALE DATA (19999)" in message.body
    assert "account 1 (ACCOUNT 000000000001, all SCPs): never collected" in message.body
    assert "account 2 (ACCOUNT 000000000002, all SCPs): data 10 days old (collected 2026-11-14)" in message.body
    assert "... and 19996 more stale targets" in message.body
    assert message.size_bytes <= 4_000
