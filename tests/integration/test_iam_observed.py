"""The emulator answers as IAM was observed live (FIELD-NOTES, "IAM as observed live"): the job cap and
its two readings, latency per kind of report, reuse, late failures, field presence — in-process under
mock_aws, and the main ones through `python -m iam_report_emulator serve` with plain boto3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from harness.clients import client, role_session_client
from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.iam_model import GENEROUS, OBSERVED, CapScope, JobKind
from iam_report_emulator.seed import OrganizationSpec
from tests.conftest import NO_RETRIES, REPORTER_ROLE, ReporterFactory

INVALID_PATH = (
    "INVALID_ORGANIZATIONS_ENTITY_PATH",
    "The entity with the specified path does not exist in your organization.",
)
INVALID_POLICY = (
    "INVALID_ORGANIZATIONS_POLICY",
    "The policy with the specified ID does not exist in your organization.",
)
ACCESS_DENIED = (
    "ORGANIZATIONS_REPORT_ACCESS_DENIED",
    "Requester is not authorized to perform the required AWS Organizations Describe* and List* actions.",
)
ROOT = Path(__file__).resolve().parents[2]


def error_of(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    response = raised.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def fields(response: Mapping[str, Any]) -> set[str]:
    return set(response) - {"ResponseMetadata"}


@pytest.fixture
def observed(store: AccessReportStore) -> AccessReportStore:
    """The observed model on a frozen clock, at real latencies (the clock moves only when told)."""
    store.configure(model=OBSERVED, job_seconds=None, time_scale=1.0)
    store.clock.freeze(store.clock.now())
    return store


# -- the job cap and its scope --------------------------------------------------------------------


def test_one_job_at_a_time_per_account_from_any_caller(
    demo_org: OrganizationSpec, observed: AccessReportStore, reporter: ReporterFactory
) -> None:
    root = demo_org.path(demo_org.root_id)
    first = reporter("run-a").generate_organizations_access_report(EntityPath=root)["JobId"]
    # Another path, and another caller: both refused while the first job runs
    for caller, path in ((reporter("run-a"), demo_org.path(demo_org.ous[0].id)), (reporter("run-b"), root)):
        code, message, status = error_of(caller.generate_organizations_access_report, EntityPath=path)
        assert (code, message, status) == (
            "ReportGenerationLimitExceeded",
            "Maximum number of concurrent jobs exceeded",
            409,
        )
    assert observed.limit_exceeded == 2
    observed.clock.advance(7.5)  # a root report takes 5.9-7.4 s
    assert reporter("run-a").get_organizations_access_report(JobId=first)["JobStatus"] == "COMPLETED"
    assert reporter("run-b").generate_organizations_access_report(EntityPath=root)["JobId"] != first


def test_with_the_cap_per_path_other_paths_start_but_the_same_path_waits(
    demo_org: OrganizationSpec, observed: AccessReportStore, reporter: ReporterFactory
) -> None:
    observed.configure(model=OBSERVED.with_scope(CapScope.PATH))
    root, ou = demo_org.path(demo_org.root_id), demo_org.path(demo_org.ous[0].id)
    reporter("run-a").generate_organizations_access_report(EntityPath=root)
    assert reporter("run-a").generate_organizations_access_report(EntityPath=ou)["JobId"]
    code, _, _ = error_of(reporter("run-b").generate_organizations_access_report, EntityPath=root)
    assert code == "ReportGenerationLimitExceeded"


def test_the_generous_model_admits_fifty_jobs_of_three_seconds(
    demo_org: OrganizationSpec, observed: AccessReportStore, iam: Any
) -> None:
    observed.configure(model=GENEROUS)
    paths = [demo_org.path(a.id) for a in demo_org.accounts if a.id != demo_org.management_account_id]
    jobs = [iam.generate_organizations_access_report(EntityPath=path)["JobId"] for path in paths]
    observed.clock.advance(3)
    assert {iam.get_organizations_access_report(JobId=j)["JobStatus"] for j in jobs} == {"COMPLETED"}


# -- latency per kind, deterministic, scaled ------------------------------------------------------


def test_each_kind_of_report_takes_an_observed_time_the_same_for_the_same_seed(
    demo_org: OrganizationSpec, observed: AccessReportStore, iam: Any
) -> None:
    policy = next(p["Id"] for p in client("organizations").list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"])
    member = next(a for a in demo_org.accounts if a.id != demo_org.management_account_id)
    cases = [
        (JobKind.ROOT, {"EntityPath": demo_org.path(demo_org.root_id)}),
        (JobKind.ROOT, {"EntityPath": demo_org.path(demo_org.management_account_id)}),
        (JobKind.FULL, {"EntityPath": demo_org.path(demo_org.ous[0].id)}),
        (JobKind.FULL, {"EntityPath": demo_org.path(member.id)}),
        (JobKind.POLICY, {"EntityPath": demo_org.path(demo_org.root_id), "OrganizationsPolicyId": policy}),
        (JobKind.FAILED, {"EntityPath": demo_org.path(demo_org.root_id) + "/ou-zzzz-zzzzzzzz"}),
    ]
    for scale in (1.0, 0.1):
        observed.configure(time_scale=scale)
        for kind, request in cases:
            job_id = iam.generate_organizations_access_report(**request)["JobId"]
            expected = OBSERVED.job_seconds(kind, f"{request['EntityPath']}|{request.get('OrganizationsPolicyId')}")
            latency = OBSERVED.latency[kind]
            assert latency.low <= expected <= latency.high
            observed.clock.advance(expected * scale)
            done = iam.get_organizations_access_report(JobId=job_id)
            assert done["JobStatus"] in ("COMPLETED", "FAILED"), (kind, request)
            took = (done["JobCompletionDate"] - done["JobCreationDate"]).total_seconds()
            assert took == pytest.approx(expected * scale, abs=0.002), (kind, request)
            observed.clock.advance(61)  # past the reuse window: the next round starts new jobs


def test_observed_latencies_span_the_captured_ranges_around_their_median() -> None:
    full = sorted(OBSERVED.job_seconds(JobKind.FULL, f"path-{n}") for n in range(2000))
    assert full[0] >= 4.7
    assert full[-1] <= 11.7
    assert full[len(full) // 2] == pytest.approx(9.7, abs=0.3)
    assert OBSERVED.job_seconds(JobKind.FULL, "x") == OBSERVED.job_seconds(JobKind.FULL, "x")
    assert {GENEROUS.job_seconds(kind, "x") for kind in JobKind} == {3.0}


# -- reuse ----------------------------------------------------------------------------------------


def test_the_same_request_within_sixty_seconds_gets_the_same_job_failed_ones_too(
    demo_org: OrganizationSpec, observed: AccessReportStore, reporter: ReporterFactory
) -> None:
    root, bad = demo_org.path(demo_org.root_id), demo_org.path(demo_org.root_id) + "/"
    caller = reporter("run-a")
    first = caller.generate_organizations_access_report(EntityPath=root)["JobId"]
    observed.clock.advance(30)
    assert caller.generate_organizations_access_report(EntityPath=root)["JobId"] == first
    failed = caller.generate_organizations_access_report(EntityPath=bad)["JobId"]
    observed.clock.advance(5)
    assert caller.get_organizations_access_report(JobId=failed)["JobStatus"] == "FAILED"
    assert caller.generate_organizations_access_report(EntityPath=bad)["JobId"] == failed
    # Never across callers: another session gets its own job
    assert reporter("run-b").generate_organizations_access_report(EntityPath=root)["JobId"] != first
    observed.clock.advance(31)  # 61 s after the first job's creation
    assert caller.generate_organizations_access_report(EntityPath=root)["JobId"] != first
    assert observed.reused == 2


# -- late failures, as observed -------------------------------------------------------------------


def test_paths_that_do_not_resolve_are_accepted_then_fail(
    demo_org: OrganizationSpec, observed: AccessReportStore, iam: Any
) -> None:
    spec = demo_org
    prod = next(u for u in spec.ous if u.name == "Prod")
    security = next(u for u in spec.ous if u.name == "Security")
    prod_account = next(a for a in spec.accounts if a.parent_id == prod.id)
    root = spec.path(spec.root_id)
    wrong = {
        "trailing slash": f"{spec.path(prod.id)}/",
        "other root": f"{spec.organization_id}/r-zzzz",
        "unknown OU": f"{root}/ou-zzzz-zzzzzzzz",
        "OU without its parent": f"{root}/{prod.id}",
        "account under the wrong OU": f"{root}/{security.id}/{prod_account.id}",
        "unknown account": f"{spec.path(prod.id)}/999999999999",
    }
    for name, path in wrong.items():
        job_id = iam.generate_organizations_access_report(EntityPath=path)["JobId"]
        running = iam.get_organizations_access_report(JobId=job_id)
        assert fields(running) == {"JobStatus", "JobCreationDate", "IsTruncated"}, name
        assert (running["JobStatus"], running["IsTruncated"]) == ("IN_PROGRESS", False), name
        observed.clock.advance(3.0)  # failed jobs end within 0.5-3.0 s
        failed = iam.get_organizations_access_report(JobId=job_id)
        assert fields(failed) == {"JobStatus", "JobCreationDate", "JobCompletionDate", "IsTruncated", "ErrorDetails"}
        assert (failed["JobStatus"], failed["IsTruncated"]) == ("FAILED", False), name
        assert (failed["ErrorDetails"]["Code"], failed["ErrorDetails"]["Message"]) == INVALID_PATH, name


def test_an_unknown_policy_is_accepted_then_fails(
    demo_org: OrganizationSpec, observed: AccessReportStore, iam: Any
) -> None:
    job_id = iam.generate_organizations_access_report(
        EntityPath=demo_org.path(demo_org.root_id), OrganizationsPolicyId="p-zzzzzzzz"
    )["JobId"]
    observed.clock.advance(3.0)
    failed = iam.get_organizations_access_report(JobId=job_id)
    assert (failed["ErrorDetails"]["Code"], failed["ErrorDetails"]["Message"]) == INVALID_POLICY


def reporter_with(demo_org: OrganizationSpec, actions: list[str], session: str = "run-1") -> Any:
    """The reporter role created in the emulated account with only `actions`, as a session of it."""
    iam = client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName=REPORTER_ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    iam.put_role_policy(RoleName=REPORTER_ROLE, PolicyName="reports", PolicyDocument=json.dumps(policy))
    role = f"arn:aws:iam::{demo_org.management_account_id}:role/{REPORTER_ROLE}"
    return role_session_client("iam", role, session, config=NO_RETRIES)


REPORTS = ["iam:GenerateOrganizationsAccessReport", "iam:GetOrganizationsAccessReport"]
READS = [
    "organizations:DescribePolicy", "organizations:ListParents", "organizations:ListPoliciesForTarget",
    "organizations:ListRoots", "organizations:ListChildren",
]  # fmt: skip


def test_a_caller_without_the_organizations_reads_gets_a_failed_job(
    demo_org: OrganizationSpec, observed: AccessReportStore
) -> None:
    caller = reporter_with(demo_org, REPORTS)
    job_id = caller.generate_organizations_access_report(EntityPath=demo_org.path(demo_org.root_id))["JobId"]
    observed.clock.advance(3.0)
    failed = caller.get_organizations_access_report(JobId=job_id)
    assert (failed["ErrorDetails"]["Code"], failed["ErrorDetails"]["Message"]) == ACCESS_DENIED


def test_the_reads_a_job_needs_depend_on_the_policy_id(demo_org: OrganizationSpec, observed: AccessReportStore) -> None:
    # Without ListTargetsForPolicy: a report of the whole path works, one narrowed to a policy fails
    caller = reporter_with(demo_org, [*REPORTS, *READS])
    policy = next(p["Id"] for p in client("organizations").list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"])
    root = demo_org.path(demo_org.root_id)
    whole = caller.generate_organizations_access_report(EntityPath=root)["JobId"]
    observed.clock.advance(8)
    narrowed = caller.generate_organizations_access_report(EntityPath=root, OrganizationsPolicyId=policy)["JobId"]
    observed.clock.advance(3)
    assert caller.get_organizations_access_report(JobId=whole)["JobStatus"] == "COMPLETED"
    assert caller.get_organizations_access_report(JobId=narrowed)["ErrorDetails"]["Code"] == ACCESS_DENIED[0]


def test_completed_pages_all_carry_both_counts(
    demo_org: OrganizationSpec, observed: AccessReportStore, iam: Any
) -> None:
    job_id = iam.generate_organizations_access_report(EntityPath=demo_org.path(demo_org.root_id))["JobId"]
    observed.clock.advance(8)
    page = iam.get_organizations_access_report(JobId=job_id, MaxItems=100)
    counts = (page["NumberOfServicesAccessible"], page["NumberOfServicesNotAccessed"])
    while page["IsTruncated"]:
        page = iam.get_organizations_access_report(JobId=job_id, MaxItems=100, Marker=page["Marker"])
        assert (page["NumberOfServicesAccessible"], page["NumberOfServicesNotAccessed"]) == counts


# -- the same through `python -m iam_report_emulator serve`, with plain boto3 ------------------------


@pytest.fixture
def serving() -> Iterator[tuple[str, str, str]]:
    """The emulator served on a free port (observed model, a tenth of real time): its URL, organization
    id and root id, read from what `serve` prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "iam_report_emulator", "serve", "--port", "0", "--time-scale", "0.1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(line.startswith("Press Ctrl+C") for line in lines):
        lines.append(process.stdout.readline())
    try:
        url = next(line.split()[-1] for line in lines if line.startswith("Emulated AWS endpoint:"))
        described = next(line for line in lines if "organization o-" in line).split()
        org = described[described.index("organization") + 1]
        root = described[described.index("(root") + 1].rstrip("),")
        assert any("IAM model observed: 1 job(s) in progress per account" in line for line in lines), lines
        yield url, org, root
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.server
def test_generate_get_reuse_and_late_failure_through_serve(serving: tuple[str, str, str]) -> None:
    url, org, root = serving
    iam = boto3.client(
        "iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    path = f"{org}/{root}"
    job_id = iam.generate_organizations_access_report(EntityPath=path)["JobId"]
    assert iam.generate_organizations_access_report(EntityPath=path)["JobId"] == job_id  # reused
    running = iam.get_organizations_access_report(JobId=job_id)
    assert fields(running) == {"JobStatus", "JobCreationDate", "IsTruncated"}
    code, _, status = error_of(iam.generate_organizations_access_report, EntityPath=f"{path}/ou-zzzz-zzzzzzzz")
    assert (code, status) == ("ReportGenerationLimitExceeded", 409)  # one job at a time
    time.sleep(0.8)  # a root report takes 5.9-7.4 s, a tenth of that here
    done = iam.get_organizations_access_report(JobId=job_id, MaxItems=1000)
    assert (done["JobStatus"], done["NumberOfServicesAccessible"]) == ("COMPLETED", len(done["AccessDetails"]))
    failing = iam.generate_organizations_access_report(EntityPath=f"{path}/")["JobId"]
    time.sleep(0.35)
    failed = iam.get_organizations_access_report(JobId=failing)
    assert (failed["ErrorDetails"]["Code"], failed["ErrorDetails"]["Message"]) == INVALID_PATH
    code, _, status = error_of(iam.generate_organizations_access_report, EntityPath=f"o-zzzzzzzzzz/{root}")
    assert (code, status) == ("AccessDenied", 403)
