"""The alert message: a subject that says what changed, a body a person acts on, attributes for filters,
one screen and SNS's size limit whatever the organization's size."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iam_report_emulator.access_reports import ACCESS_DENIED, INVALID_PATH, INVALID_POLICY
from iam_report_emulator.permissions import reads_needed
from lambdas.collector.guardrails.daily import ProposalLine
from lambdas.collector.insight.unused import Findings, ProblemJob, StaleTarget, TargetFindings, UnusedService
from lambdas.collector.models import PageOutcome, ReportPage
from lambdas.collector.notify.alert_message import (
    MAX_LINES,
    SAVED_QUERIES,
    SNS_MAX_BYTES,
    AlertMessage,
    Guardrails,
    Severity,
    compose,
    severity_of,
    should_publish,
)
from lambdas.collector.notify.fixes import FIXES, REPORT_JOB_READS, SOME_REPORTER_ROLE

AS_OF = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
ORG, DT, RUN = "o-abcdefghij", "2026-11-24", "run-20261124"
ROOT = f"{ORG}/r-ab12"
ROLE = "arn:aws:iam::123456789012:role/OrgAccessReportReader"
BUCKET = "org-access-data"
QUERIES = Path(__file__).resolve().parents[2] / "queries"


def ou_id(n: int) -> str:
    return f"ou-ab12-{n:08d}"


def account_id(n: int) -> str:
    return f"{n:012d}"


def ou(
    n: int,
    unused: int = 0,
    *,
    newly: Sequence[str] = (),
    used: Sequence[str] = (),
    name: str | None = None,
    allowed: int = 0,
    accounts: int = 0,
) -> TargetFindings:
    return TargetFindings(
        target_path=f"{ROOT}/{ou_id(n)}",
        target_type="ORGANIZATIONAL_UNIT",
        target_id=ou_id(n),
        target_name=name if name is not None else f"OU {n}",
        policy_id=None,
        unused_count=unused,
        unused=(),
        newly_unused=tuple(newly),
        newly_used=tuple(used),
        allowed_count=allowed,
        accounts_below=accounts,
    )


def account(
    n: int,
    unused: int = 0,
    *,
    newly: Sequence[str] = (),
    used: Sequence[str] = (),
    name: str | None = None,
    parent: int = 0,
    services: Sequence[UnusedService] = (),
) -> TargetFindings:
    return TargetFindings(
        target_path=f"{ROOT}/{ou_id(parent)}/{account_id(n)}",
        target_type="ACCOUNT",
        target_id=account_id(n),
        target_name=name if name is not None else f"account {n}",
        policy_id=None,
        unused_count=unused,
        unused=tuple(services),
        newly_unused=tuple(newly),
        newly_used=tuple(used),
    )


def root(unused: int, *, accounts: int = 0, allowed: int = 0) -> TargetFindings:
    return TargetFindings(ROOT, "ROOT", "r-ab12", "Root", None, unused, (), (), (), allowed, accounts)


def problem(
    n: int, code: str | None = "AccessDenied", message: str | None = "Access denied", **kind: str
) -> ProblemJob:
    status = kind.get("status", "FAILED")
    if kind.get("type") == "OU":
        return ProblemJob(f"{ROOT}/{ou_id(n)}", "ORGANIZATIONAL_UNIT", ou_id(n), f"OU {n}", None, status, code, message)
    path = f"{ROOT}/{ou_id(0)}/{account_id(n)}"
    return ProblemJob(path, "ACCOUNT", account_id(n), f"account {n}", None, status, code, message)


def findings(
    targets: Sequence[TargetFindings] = (),
    problems: Sequence[ProblemJob] = (),
    *,
    previous: bool = True,
    completed: int = 10,
    stale: Sequence[StaleTarget] = (),
) -> Findings:
    return Findings(
        as_of=AS_OF,
        unused_after_days=90,
        targets_checked=len(targets) + 10,
        compared_with_previous=previous,
        targets=tuple(targets),
        problems=tuple(problems),
        completed_jobs=completed,
        stale=tuple(stale),
        stale_after_days=7 if stale else None,
    )


def proposal(n: int, *, new: int = 0, status: str = "PROPOSED", reason: str | None = None) -> ProposalLine:
    return ProposalLine(
        target_id=ou_id(n),
        target_type="ORGANIZATIONAL_UNIT",
        target_name=f"OU {n}",
        status=status,
        reason=reason,
        policies=2 if status == "PROPOSED" else 0,
        services=390 if status == "PROPOSED" else 0,
        largest_chars=5_113 if status == "PROPOSED" else 0,
        new=new,
        withdrawn=1 if status == "PROPOSED" else 0,
    )


def page(dt: str = DT) -> ReportPage:
    key = f"reports/dt={dt}/index.html"
    return ReportPage(
        dt=dt,
        key=key,
        latest_key="reports/latest/index.html",
        uri=f"s3://{BUCKET}/{key}",
        console_url=f"https://s3.console.aws.amazon.com/s3/object/{BUCKET}?prefix={key}",
        bytes=1_000,
        render_seconds=0.5,
    )


def message(
    of: Findings,
    *,
    org: str = ORG,
    max_targets: int = 25,
    top_services: int = 10,
    reporter_role: str | None = None,
    guardrails: Guardrails | None = None,
    report: PageOutcome | None = None,
    max_bytes: int = SNS_MAX_BYTES,
) -> AlertMessage:
    return compose(
        of,
        organization_id=org,
        dt=DT,
        run_id=RUN,
        max_targets=max_targets,
        top_services=top_services,
        reporter_role=reporter_role,
        guardrails=guardrails,
        report=report,
        max_bytes=max_bytes,
    )


def section(body: str, title: str) -> list[str]:
    """The lines of one section, without its title."""
    after = body.split(f"\n{title}", 1)[1].split("\n", 1)[1]
    return after.split("\n\n", 1)[0].splitlines()


def test_the_subject_says_what_changed_where_then_new_proposals_and_failures() -> None:
    # Given Prod OU with 3 newly unused services, two accounts with fewer, 2 new guardrail proposals and a failed job
    targets = [
        ou(1, 400, newly=("athena", "glue", "kafka"), name="Prod"),
        account(2, 300, newly=("glue",)),
        account(3, 300, newly=("kafka", "glue")),
    ]
    guardrails = Guardrails(lines=(proposal(1, new=3), proposal(2, new=1), proposal(3)))
    # When
    subject = message(findings(targets, [problem(9)]), guardrails=guardrails).subject
    # Then
    assert subject == "3 services newly unused in Prod OU (+2 targets); 2 new guardrail proposals; 1 failure"


def test_a_day_without_changes_says_so_and_counts_zero_failures() -> None:
    # Given unused services, nothing new since the previous snapshot, and every job completed
    quiet = findings([ou(1, 400)])
    # When / Then
    assert message(quiet).subject == "No change in unused services; 0 failures"
    assert message(quiet, guardrails=Guardrails()).subject == (
        "No change in unused services; 0 new guardrail proposals; 0 failures"
    )
    assert "WHAT CHANGED" not in message(quiet).body
    assert "Since the previous snapshot: 0 newly unused, 0 newly used." in message(quiet).body


def test_when_every_job_failed_the_alert_leads_with_the_failure_and_its_fix() -> None:
    # Given a run whose 19 report jobs all failed, so the snapshot has no access data at all
    failed = Findings(AS_OF, 90, 0, True, (), tuple(problem(n) for n in range(19)), completed_jobs=0)
    # When
    alert = message(failed, reporter_role=ROLE)
    # Then the subject and the first line say so, not "0 unused services on 0 of 0 targets"
    assert alert.subject == "All 19 report jobs failed (AccessDenied); no access data today"
    first, second = alert.body.splitlines()[:2]
    assert first.startswith("All 19 report jobs failed: no access data today")
    assert second == f"IAM access report of {ORG}, snapshot {DT} (run {RUN}, 2026-11-24 06:00 UTC)."
    assert "0 services" not in alert.body
    assert "0 of 0" not in alert.body
    # And the fix follows, for the one error code
    (fix,) = section(alert.body, "WHAT TO DO")
    assert fix.startswith("- AccessDenied: 19 report jobs FAILED, on account 0 (000000000000), account 1")
    assert fix.endswith(FIXES["AccessDenied"].replace("{role}", ROLE))
    assert alert.severity is Severity.CRITICAL
    # And with IAM's longest code and a failed guardrail stage, what says "failed" stays in the subject
    code = "ORGANIZATIONS_REPORT_ACCESS_DENIED"
    failed = Findings(AS_OF, 90, 0, True, (), tuple(problem(n, code) for n in range(10_000)), completed_jobs=0)
    both = message(failed, guardrails=Guardrails(error="States.TaskFailed")).subject
    assert both == f"All 10,000 report jobs failed ({code}); guardrails failed"
    assert message(failed, guardrails=Guardrails()).subject == (
        f"All 10,000 report jobs failed ({code}); no access data today"
    )


def test_a_first_snapshot_has_nothing_to_compare_with() -> None:
    alert = message(findings([ou(1, 42)], previous=False))
    assert alert.subject == "First snapshot: 42 unused services; 0 failures"
    assert "No previous snapshot to compare with." in alert.body
    assert "WHAT CHANGED" not in alert.body


def test_newly_used_services_alone_make_the_subject_when_nothing_became_unused() -> None:
    subject = message(findings([ou(1, 5, used=("ec2", "s3"), name="Dev"), account(2, used=("s3",))])).subject
    assert subject == "2 services newly used in Dev OU (+1 target); 0 failures"


def test_a_long_name_in_the_subject_gives_way_first_and_stays_ascii() -> None:
    # Given the changed OU's 128-character non-ASCII name
    name = "Produktion-Übersee-" + "ü" * 109
    targets = [ou(0, 450, newly=("athena", "glue", "kafka"), name=name), account(1, 450, newly=("s3",))]
    # When
    subject = message(findings(targets, [problem(1)]), guardrails=Guardrails(lines=(proposal(1, new=1),))).subject
    # Then the name is cut, visibly, to what the rest leaves, in plain printable ASCII
    assert subject == (
        "3 services newly unused in Produktion-?berse... OU (+1 target); 1 new guardrail proposal; 1 failure"
    )
    assert len(subject) == 99


def test_the_subject_stays_under_100_ascii_characters_however_large_the_counts() -> None:
    # Given counts of a very large organization and a long name
    targets = [ou(0, 450, newly=tuple(f"s{i}" for i in range(1_234)), name="Produktion " * 10)]
    targets += [account(n, 450, newly=("s3",)) for n in range(1, 10_000)]
    guardrails = Guardrails(lines=tuple(proposal(n, new=1) for n in range(1_250)))
    # When
    subject = message(findings(targets, [problem(1)] * 9_999), org="o-" + "a" * 32, guardrails=guardrails).subject
    # Then, too little room being left for the name, the totals say what changed and every count stays
    assert subject == ("11,233 services newly unused on 10,000 targets; 1,250 new guardrail proposals; 9,999 failures")
    assert subject.isascii()
    assert subject.isprintable()


def test_nothing_to_report_says_so() -> None:
    summary = message(findings())
    assert summary.subject == "No change in unused services; 0 failures"
    assert "Nothing to report: no unused services, and every report job completed." in summary.body
    assert summary.severity is Severity.INFO


def test_the_body_leads_with_changes_then_actions_then_where_most_is_unused_then_where_the_rest_is() -> None:
    # Given changes on an account and an OU, a failed job, a proposal, and a report page
    targets = [
        account(7, 420, newly=("athena", "glue", "kafka", "s3"), used=("ec2",)),
        ou(1, 400, newly=("athena", "glue", "kafka"), used=("ec2",), name="Prod", allowed=456, accounts=3),
        root(380, accounts=12, allowed=456),
    ]
    alert = message(
        findings(targets, [problem(8)]),
        guardrails=Guardrails(lines=(proposal(1, new=3),), location=f"s3://{BUCKET}/recommendations/dt={DT}/"),
        report=PageOutcome(page=page()),
    )
    body = alert.body
    # Then the sections come in that order
    titles = ["WHAT CHANGED", "WHAT TO DO", "WHERE MOST IS UNUSED", "SEE THE REST"]
    positions = [body.index(f"\n{title}") for title in titles]
    assert positions == sorted(positions)
    # And the OU's change comes before the account's, though the account changed more
    assert section(body, "WHAT CHANGED since the previous snapshot (roots and OUs first)") == [
        f"- Prod (OU {ou_id(1)}): 3 newly unused: athena, glue, kafka; 1 newly used: ec2",
        "- account 7 (account 000000000007): 4 newly unused: athena, glue, kafka, s3; 1 newly used: ec2",
    ]
    # And where most is unused names roots and OUs only, with how much of what is allowed, and their accounts
    assert section(body, "WHERE MOST IS UNUSED (roots and OUs, most unused first)") == [
        f"- Prod (OU {ou_id(1)}): 400 of 456 allowed services unused; 3 accounts",
        "- Root (root r-ab12): 380 of 456 allowed services unused; 12 accounts",
    ]
    # And the headline counts it all in two sentences under the snapshot's name
    assert body.splitlines()[1:3] == [
        "1,200 services their SCPs allow were unused for 90+ days on 3 of 13 targets (allowlist left out).",
        "Since the previous snapshot: 7 newly unused, 2 newly used; 1 report job did not complete.",
    ]


def test_accounts_get_lines_of_their_own_only_when_no_root_or_ou_was_collected() -> None:
    accounts_only = message(findings([account(1, 300), account(2, 310)])).body
    assert section(accounts_only, "WHERE MOST IS UNUSED (targets, most unused first)") == [
        "- account 2 (account 000000000002): 310 services unused",
        "- account 1 (account 000000000001): 300 services unused",
    ]
    with_an_ou = message(findings([account(1, 300), account(2, 310), ou(1, 250)])).body
    assert section(with_an_ou, "WHERE MOST IS UNUSED (roots and OUs, most unused first)") == [
        f"- OU 1 (OU {ou_id(1)}): 250 services unused"
    ]


def test_unused_services_are_never_listed_one_by_one() -> None:
    # Given targets whose findings carry their never used services (as the finder keeps them when asked)
    services = [UnusedService(f"svc-{i:03d}", f"Service {i:03d}", None) for i in range(400)]
    body = message(findings([account(n, 400, services=services) for n in range(3)])).body
    # Then not one of them is in the message, nor "never used" lines
    assert not re.search(r"svc-\d{3}", body)
    assert "never used" not in body


def test_failed_jobs_are_grouped_by_error_code_one_line_each_most_jobs_first() -> None:
    # Given 5 jobs denied (an OU's among them), 2 timed out, and one with a code no fix is known for
    problems = [problem(n) for n in range(1, 5)] + [problem(9, type="OU")]
    problems += [problem(n, "TimedOut", None, status="TIMED_OUT") for n in (11, 12)]
    problems += [problem(13, "SomethingNew", "odd\nthing")]
    # When
    body = message(findings(problems=problems), reporter_role=ROLE).body
    # Then one line per code, the most jobs first, the OU named first, IAM's words and the fix on it
    assert section(body, "WHAT TO DO") == [
        f"- AccessDenied: 5 report jobs FAILED, on OU 9 OU, account 1 (000000000001), account 2 (000000000002) "
        f"and 2 more. IAM: Access denied. Fix: {FIXES['AccessDenied'].replace('{role}', ROLE)}",
        f"- TimedOut: 2 report jobs TIMED_OUT, on account 11 (000000000011), account 12 (000000000012). "
        f"Fix: {FIXES['TimedOut']}",
        "- SomethingNew: 1 report job FAILED, on account 13 (000000000013). IAM: odd thing. "
        "No known fix: see report_jobs.",
    ]
    # And the footer has the query for every job that did not complete
    assert (
        "SELECT target_path, job_status, error_code, error_message FROM report_jobs "
        f"WHERE dt = '{DT}' AND job_status NOT IN ('COMPLETED', 'DEFERRED');"
    ) in body


def test_more_error_codes_than_fit_are_counted() -> None:
    problems = [problem(n, f"Code{n}") for n in range(7)]
    lines = section(message(findings(problems=problems)).body, "WHAT TO DO")
    assert len(lines) == 5
    assert lines[-1] == "... and 3 more error codes: see report_jobs"


def test_a_job_without_the_organizations_reads_says_which_to_allow_to_which_role() -> None:
    body = message(findings(problems=[problem(7, *ACCESS_DENIED)]), reporter_role=ROLE).body
    assert (
        f"- {ACCESS_DENIED[0]}: 1 report job FAILED, on account 7 (000000000007). IAM: {ACCESS_DENIED[1].rstrip('.')}. "
        f"Fix: allow {ROLE} organizations:DescribePolicy, ListChildren, ListParents, ListPoliciesForTarget, "
        "ListRoots, ListTargetsForPolicy\n"
    ) in body


def test_the_reads_in_the_fix_are_those_the_report_job_needs_with_and_without_a_policy_id() -> None:
    # The emulator decides ORGANIZATIONS_REPORT_ACCESS_DENIED from these, as IAM was observed to
    assert set(REPORT_JOB_READS) == {*reads_needed(None), *reads_needed("p-abcdefgh")}


@pytest.mark.parametrize("code", sorted(FIXES))
def test_every_known_code_gets_its_fix_on_its_line(code: str) -> None:
    # Given a problem job ending with that code
    body = message(findings(problems=[problem(7, code, "why")]), reporter_role=ROLE).body
    # Then the code's line ends with the fix, the role named where the fix is to it
    fix = FIXES[code].replace("{role}", ROLE)
    assert f"- {code}: 1 report job FAILED, on account 7 (000000000007). IAM: why. Fix: {fix}\n" in body
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
    assert words in message(findings(problems=[problem(7, code)])).body


def test_without_the_role_the_fix_names_the_reporter_role() -> None:
    body = message(findings(problems=[problem(7, ACCESS_DENIED[0])])).body
    assert f"Fix: allow {SOME_REPORTER_ROLE} organizations:DescribePolicy," in body


def test_guardrail_proposals_are_actions_to_review_the_top_ones_listed_and_the_rest_counted() -> None:
    # Given 9 recommendations as they come: proposals with new services first, one without a slot, two held
    lines = (
        *(proposal(n, new=8 - n) for n in range(1, 7)),
        proposal(7, status="NO_SLOT", reason="every attachment\nslot is taken"),
        *(proposal(n, status="HELD", reason="no report of this target today") for n in (8, 9)),
    )
    location = f"s3://{BUCKET}/recommendations/dt={DT}/"
    # When
    alert = message(findings([ou(1, 400)]), guardrails=Guardrails(lines=lines, location=location))
    # Then the first five are listed as they came, each saying what to deny; the other two that need a person counted
    listed = section(alert.body, "WHAT TO DO")
    assert listed[0] == (
        f"- Review the guardrail for OU 1 (OU {ou_id(1)}): deny 390 services in 2 SCPs (largest 5,113 chars); "
        "7 new, 1 withdrawn"
    )
    assert [line.split(" (OU ")[0] for line in listed[:5]] == [
        f"- Review the guardrail for OU {n}" for n in range(1, 6)
    ]
    assert listed[5:] == ["... and 2 more: see Guardrail proposals below"]
    assert f"\nGuardrail proposals: {location}\n" in alert.body
    assert alert.subject == "No change in unused services; 6 new guardrail proposals; 0 failures"
    # And one without a slot says why, on one line; held ones ask nothing of anyone and are not listed
    few = message(findings(), guardrails=Guardrails(lines=lines[6:])).body
    assert section(few, "WHAT TO DO") == [
        f"- Guardrail for OU 7 (OU {ou_id(7)}) not proposed (NO_SLOT): every attachment slot is taken"
    ]
    assert "WHAT TO DO" not in message(findings(), guardrails=Guardrails(lines=lines[7:])).body


def test_new_guardrail_proposals_publish_a_notice_and_are_an_attribute() -> None:
    guardrails = Guardrails(lines=(proposal(1, new=2), proposal(2)))
    quiet = findings()
    assert should_publish(quiet, min_unused=1, always_send_summary=False, guardrails=guardrails)
    assert not should_publish(quiet, min_unused=1, always_send_summary=False, guardrails=Guardrails((proposal(2),)))
    assert severity_of(quiet, guardrails) is Severity.NOTICE
    assert message(quiet, guardrails=guardrails).attributes["new_guardrail_proposals"]["StringValue"] == "1"


def test_a_failed_guardrail_stage_is_a_failure_to_look_into() -> None:
    # Given the guardrail stage's error, and nothing else wrong
    guardrails = Guardrails(error="States.TaskFailed")
    alert = message(findings([ou(1, 400)]), guardrails=guardrails)
    # Then the subject counts it, the body says so, and it is published as a warning
    assert alert.subject == "No change in unused services; guardrails failed; 1 failure"
    assert section(alert.body, "WHAT TO DO") == ["- Guardrail recommendations failed (States.TaskFailed): none today"]
    assert should_publish(findings(), min_unused=1, always_send_summary=False, guardrails=guardrails)
    assert alert.severity is Severity.WARNING


def test_the_report_page_is_linked_with_its_console_url() -> None:
    body = message(findings([ou(1, 400)]), report=PageOutcome(page=page())).body
    assert (
        f"\nSEE THE REST\nReport page: s3://{BUCKET}/reports/dt={DT}/index.html\n"
        f"  console: https://s3.console.aws.amazon.com/s3/object/{BUCKET}?prefix=reports/dt={DT}/index.html\n"
    ) in body


def test_a_report_page_that_failed_says_so_and_publishes_a_warning() -> None:
    report = PageOutcome(error="ReportRenderError")
    alert = message(findings([ou(1, 400)]), report=report)
    assert "\nNo report page today: ReportRenderError\n" in alert.body
    assert "Report page:" not in alert.body
    assert alert.subject == "No change in unused services; 1 failure"
    assert should_publish(findings(), min_unused=1, always_send_summary=False, report=report)
    assert severity_of(findings(), report=report) is Severity.WARNING


def test_without_a_page_or_its_error_there_is_no_page_line() -> None:
    body = message(findings([ou(1, 400)]), report=PageOutcome()).body
    assert "Report page" not in body
    assert "report page today" not in body


def test_the_footer_names_the_partition_the_query_and_saved_queries_that_exist() -> None:
    body = message(findings([ou(1, 400)])).body
    assert (
        f"  SELECT target_path, policy_id, count(*) AS unused FROM access_details WHERE dt = '{DT}' AND "
        "(last_authenticated_time IS NULL OR last_authenticated_time < collected_at - INTERVAL '90' DAY) "
        "GROUP BY target_path, policy_id ORDER BY unused DESC;\n"
    ) in body
    assert f"Athena, partition dt = '{DT}' (run {RUN})" in body
    assert set(SAVED_QUERIES) <= {path.stem for path in QUERIES.glob("*.sql")}
    assert body.endswith("DESC;\n")  # no failed job: no report_jobs query


def test_what_exceeds_a_sections_lines_is_counted_as_and_n_more() -> None:
    # Given 30 changed targets (10 OUs, 20 accounts), an OU with 14 newly unused services, and 10 OUs with unused
    ous = [ou(n, 400 - n, newly=("s3",)) for n in range(1, 11)]
    ous[0] = ou(1, 399, newly=tuple(f"svc{i:02d}" for i in range(14)))
    accounts = [account(n, 300, newly=("s3",)) for n in range(20)]
    # When at most 25 targets and 10 services are asked for
    body = message(findings([*ous, *accounts]), max_targets=25, top_services=10).body
    # Then 8 changes are shown, OUs first, the rest counted by kind
    changes = section(body, "WHAT CHANGED since the previous snapshot (roots and OUs first)")
    assert len(changes) == 9
    assert changes[-1] == "... and 22 more targets changed (20 accounts): saved query newly_unused"
    assert changes[0].endswith(": 14 newly unused: " + ", ".join(f"svc{i:02d}" for i in range(10)) + " and 4 more")
    # And 6 OUs where most is unused, the others counted
    where = section(body, "WHERE MOST IS UNUSED (roots and OUs, most unused first)")
    assert where[-1] == "... and 4 more roots and OUs with unused services: see the report page"
    assert len(where) == 7
    # And fewer lines when fewer are asked for
    fewer = message(findings([*ous, *accounts]), max_targets=2, top_services=3).body
    assert section(fewer, "WHAT CHANGED since the previous snapshot (roots and OUs first)")[-1].startswith(
        "... and 28 more targets changed"
    )
    assert "svc00, svc01, svc02 and 11 more" in fewer


def test_long_names_are_cut_and_flattened() -> None:
    body = message(findings([ou(1, 400, newly=("s3",), name="Very long\nname " + "x" * 200)])).body
    assert f"- Very long name {'x' * 24}… (OU {ou_id(1)}): 1 newly unused: s3\n" in body


def test_the_attributes_carry_severity_and_counts_for_subscription_filters() -> None:
    # Given 5 unused services on 2 targets, 2 newly unused, 1 newly used, 3 problem jobs and a new proposal
    targets = [ou(1, 3, newly=("svc0", "svc1")), account(2, 2, used=("ec2",))]
    guardrails = Guardrails(lines=(proposal(1, new=1),))
    # When
    attributes = message(findings(targets, [problem(7), problem(8), problem(9)]), guardrails=guardrails).attributes
    # Then they are in boto3's MessageAttributes format, counts as Numbers, at most SNS's 10
    assert attributes == {
        "severity": {"DataType": "String", "StringValue": "CRITICAL"},
        "unused_services": {"DataType": "Number", "StringValue": "5"},
        "newly_unused_services": {"DataType": "Number", "StringValue": "2"},
        "newly_used_services": {"DataType": "Number", "StringValue": "1"},
        "problem_jobs": {"DataType": "Number", "StringValue": "3"},
        "targets_with_unused": {"DataType": "Number", "StringValue": "2"},
        "new_guardrail_proposals": {"DataType": "Number", "StringValue": "1"},
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
    targets = [ou(1, unused, newly=tuple(f"svc{i}" for i in range(newly)))] if unused else []
    of = findings(targets, [problem(n) for n in range(problems)])
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
    targets = [account(n, 1, newly=("s3",) if n < newly else ()) for n in range(unused)]
    of = findings(targets, [problem(n) for n in range(problems)])
    assert should_publish(of, min_unused=min_unused, always_send_summary=always) is publish


def stale_target(n: int, age: int | None) -> StaleTarget:
    return StaleTarget(
        target_path=f"{ROOT}/{ou_id(0)}/{account_id(n)}",
        target_type="ACCOUNT",
        target_id=account_id(n),
        target_name=f"account {n}",
        policy_id=None,
        data_age_days=age,
        collected_at=None if age is None else AS_OF - timedelta(days=age),
    )


def test_stale_targets_are_one_line_to_check_a_warning_and_published() -> None:
    # Given nothing unused but 19,999 targets whose data is older than a 7-day cadence, one never collected
    stale = [stale_target(n, None if n == 1 else 8 + n) for n in range(1, 20_000)]
    of = findings(stale=stale)
    # When
    alert = message(of)
    # Then it warns, says how many in the subject and headline, and names the oldest three on one line
    assert severity_of(of) is Severity.WARNING
    assert should_publish(of, min_unused=1, always_send_summary=False)
    assert alert.subject == "No change in unused services; 19,999 stale; 0 failures"
    assert "; 19,999 targets with data older than 7 days." in alert.body
    assert section(alert.body, "WHAT TO DO") == [
        "- Check 19,999 targets with data older than 7 days (1 never collected), oldest first: "
        "account 1 (000000000001), account 2 (000000000002), account 3 (000000000003) and 19,996 more"
    ]


def ten_thousand_accounts() -> tuple[Findings, Guardrails]:
    """A 10,000-account organization: 1,250 OUs of 8 accounts, hundreds of unused services everywhere,
    many newly unused, 300 failed jobs of several codes, 500 guardrail proposals, and long names."""
    services = tuple(UnusedService(f"never-{i:03d}", f"Never used service {i:03d}", None) for i in range(100))
    newly = tuple(f"quiet-{i:02d}" for i in range(40))
    ous = [
        ou(n, 440 - n % 40, newly=newly[: n % 7], name=f"Business unit {n} " + "é" * 60, allowed=456, accounts=8)
        for n in range(1_250)
    ]
    accounts = [
        TargetFindings(
            f"{ROOT}/{ou_id(n // 8)}/{account_id(n)}",
            "ACCOUNT",
            account_id(n),
            f"workload account {n} " + "ü" * 100,
            None,
            300 + n % 150,
            services,
            newly[: n % 11],
            ("ec2",) if n % 13 == 0 else (),
            456,
        )
        for n in range(10_000)
    ]
    codes = ["AccessDenied", "TimedOut", "NotStarted", "RowCountMismatch", "NoSuchEntity", "Odd", "Odder"]
    problems = [problem(n * 31, codes[n % len(codes)], "é" * 2_000) for n in range(300)]
    findings = Findings(
        AS_OF,
        90,
        11_251,
        True,
        (root(420, accounts=10_000, allowed=456), *ous, *accounts),
        tuple(problems),
        completed_jobs=10_951,
    )
    proposals = tuple(proposal(n, new=500 - n, reason="x" * 500) for n in range(500))
    return findings, Guardrails(lines=proposals, location=f"s3://{BUCKET}/recommendations/dt={DT}/")


def test_a_10000_account_organizations_alert_fits_one_screen_and_sns() -> None:
    # Given a 10,000-account organization with changes, failures and proposals everywhere
    of, guardrails = ten_thousand_accounts()
    role = "arn:aws:iam::123456789012:role/" + "p/" * 240 + "OrgAccessReportReader"  # 501 of 512 characters
    # When composed with the most generous settings
    alert = message(
        of,
        max_targets=500,
        top_services=100,
        reporter_role=role,
        guardrails=guardrails,
        report=PageOutcome(page=page()),
    )
    lines = alert.body.splitlines()
    # Then it fits one screen, the subject fits SNS's, and the whole message SNS's limit with room to spare
    assert len(lines) <= MAX_LINES
    assert len(alert.subject) < 100
    assert alert.size_bytes < 256 * 1024
    # And every section is there, its top lines and the rest counted
    assert alert.subject.endswith("; 500 new guardrail proposals; 300 failures")
    changed = [t for t in of.targets if t.changed]
    accounts = sum(t.target_type == "ACCOUNT" for t in changed)
    assert (
        f"... and {len(changed) - 8:,} more targets changed ({accounts:,} accounts): saved query newly_unused" in lines
    )
    assert "... and 3 more error codes: see report_jobs" in lines
    assert "... and 495 more: see Guardrail proposals below" in lines
    assert "... and 1,245 more roots and OUs with unused services: see the report page" in lines
    assert lines[-1].endswith("job_status NOT IN ('COMPLETED', 'DEFERRED');")
    # And nothing is listed alphabetically: no unused service by name, at most 10 namespaces on a line
    assert "never-" not in alert.body
    assert max(len(re.findall(r"quiet-\d\d", line)) for line in lines) <= 10
    # And no account has a line of its own outside the failures
    assert not [line for line in lines if line.startswith("- workload account")]


def test_a_tight_byte_budget_still_yields_a_whole_message_within_it() -> None:
    # Given the 10,000-account organization and a budget far below what its sections would take
    of, guardrails = ten_thousand_accounts()
    # When
    alert = message(of, reporter_role=ROLE, guardrails=guardrails, report=PageOutcome(page=page()), max_bytes=4_000)
    # Then it fits, counting bytes not characters, and still ends with where the rest is
    assert alert.size_bytes <= 4_000
    assert len(alert.body) < len(alert.body.encode())
    assert "\nSEE THE REST\nReport page: " in alert.body
    assert alert.body.startswith("IAM access report of")
