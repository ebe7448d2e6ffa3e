"""The reporter role's permissions, end to end: the harness stands up the template's own role, the emulator
evaluates it as IAM does, and a role without the reads IAM's report job makes yields a run whose every job
FAILED with IAM's code and words, no access rows, and an alert that says what to allow to which role."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from moto.iam.models import iam_backends

from harness.clients import role_session_client
from iam_report_emulator import store_for_account
from iam_report_emulator.access_reports import ACCESS_DENIED
from iam_report_emulator.permissions import missing_reads
from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.notify.fixes import REPORT_JOB_READS
from tests.conftest import REPORTER_ROLE
from tests.e2e.conftest import Collector
from tests.helpers import organization_targets

# What discover reads: the organization, its roots, and each parent's OUs and accounts.
DISCOVER_READS = [
    "organizations:DescribeOrganization",
    "organizations:ListRoots",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:ListAccountsForParent",
]
REPORT_ACTIONS = ["iam:GenerateOrganizationsAccessReport", "iam:GetOrganizationsAccessReport"]


def role_arn(spec: OrganizationSpec) -> str:
    return f"arn:aws:iam::{spec.management_account_id}:role/{REPORTER_ROLE}"


def reporter_iam(spec: OrganizationSpec) -> Any:
    """An IAM client acting in the reporter role's account (the organization's management account)."""
    return role_session_client("iam", role_arn(spec), "e2e-permissions")


def allowed_actions(document: dict[str, Any]) -> set[str]:
    statements = document["Statement"]
    return {
        action
        for statement in (statements if isinstance(statements, list) else [statements])
        if statement["Effect"] == "Allow"
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }


def test_the_harness_stands_up_the_templates_reporter_role_and_it_has_every_read_the_job_needs(
    collector: Collector, demo_org: OrganizationSpec
) -> None:
    # Given the deployment stood up from the synthesized template
    account = demo_org.management_account_id
    # Then the reporter role is in the management account with the template's policy, intrinsics resolved
    document = reporter_iam(demo_org).get_role_policy(RoleName=REPORTER_ROLE, PolicyName="reports")["PolicyDocument"]
    generate = next(s for s in document["Statement"] if s["Action"] == "iam:GenerateOrganizationsAccessReport")
    assert generate["Resource"] == f"arn:aws:iam::{account}:access-report/*"
    assert {*REPORT_JOB_READS, *DISCOVER_READS, *REPORT_ACTIONS} <= allowed_actions(document)
    # And the emulator, evaluating that role as the caller, finds no read missing, with or without a policy id
    session = f"arn:aws:sts::{account}:assumed-role/{REPORTER_ROLE}/org-access-report-run"
    backend = iam_backends[account]["global"]
    assert missing_reads(backend, session, None) == []
    assert missing_reads(backend, session, "p-abcdefgh") == []


def test_a_reporter_role_without_the_report_jobs_reads_fails_every_job_and_the_alert_says_what_to_allow(
    collector: Collector, demo_org: OrganizationSpec
) -> None:
    # Given the reporter role's policy replaced by one that keeps discover's reads and the two report
    # actions, and drops the reads only IAM's report job makes: DescribePolicy, ListChildren, ListParents,
    # ListPoliciesForTarget, ListTargetsForPolicy. ListRoots stays: discover lists the roots with it, so
    # without it discover would fail, not the jobs (the job needs it too; any one read missing fails it).
    narrow = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": [*DISCOVER_READS, *REPORT_ACTIONS], "Resource": "*"}],
    }
    assert set(REPORT_JOB_READS) - set(DISCOVER_READS) == {
        "organizations:DescribePolicy",
        "organizations:ListChildren",
        "organizations:ListParents",
        "organizations:ListPoliciesForTarget",
        "organizations:ListTargetsForPolicy",
    }
    reporter_iam(demo_org).put_role_policy(
        RoleName=REPORTER_ROLE, PolicyName="reports", PolicyDocument=json.dumps(narrow)
    )

    # When the collector runs through the deployed definition
    execution = collector.run()

    # Then the run SUCCEEDS: a FAILED job is a finding recorded in report_jobs and alerted, not a stage's
    # error (IAM accepted every Generate; each job ended FAILED when read)
    assert execution.status == "SUCCEEDED", execution.cause
    tables = collector.tables()
    jobs = tables["report_jobs"].to_pylist()
    assert len(jobs) == organization_targets(demo_org) == execution.run["targets"]
    assert {(j["job_status"], j["error_code"], j["error_message"]) for j in jobs} == {("FAILED", *ACCESS_DENIED)}
    # And a job that failed fast was not generated again (inside IAM's 60-s reuse window or after): one
    # admitted Generate per target (a refused one is a probe of IAM's job cap, counted on its job), each
    # job read once or twice
    store = store_for_account(demo_org.management_account_id)
    generated = store.throttler.counters.calls["GenerateOrganizationsAccessReport"] - store.limit_exceeded
    assert generated == len(store.jobs) == len(jobs)
    assert store.reused == 0
    assert {(j["iam_calls"]) for j in jobs} <= {2, 3, 4}
    assert sum(j["iam_calls"] for j in jobs) <= 3 * len(jobs) + store.limit_exceeded
    # And no access row was written for the run
    details = tables["access_details"]
    assert details.filter(pa.compute.equal(details["run_id"], execution.run["run_id"])).num_rows == 0
    # And the one alert leads with the failure: the code, IAM's words, and the reads to allow to the role
    (alert,) = collector.alerts()
    body = alert["Message"]
    assert alert["Subject"] == f"All {len(jobs)} report jobs failed ({ACCESS_DENIED[0]}); no access data today"
    (line,) = [line for line in body.splitlines() if line.startswith(f"- {ACCESS_DENIED[0]}: ")]
    assert line.startswith(f"- {ACCESS_DENIED[0]}: {len(jobs)} report jobs FAILED, on Root root, ")
    assert f" IAM: {ACCESS_DENIED[1].rstrip('.')}. Fix: " in line
    assert line.endswith(
        f"Fix: allow {role_arn(demo_org)} organizations:DescribePolicy, ListChildren, ListParents, "
        "ListPoliciesForTarget, ListRoots, ListTargetsForPolicy"
    )
