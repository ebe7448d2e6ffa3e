"""The report job API under mock_aws: validation, path resolution, lifecycle, owner rule, limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

import iam_report_emulator
from harness.clients import client
from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.presets import apply_preset
from iam_report_emulator.seed import OrganizationSpec
from iam_report_emulator.throttling import RateLimit
from tests.conftest import NO_RETRIES, RAW, ReporterFactory


def error_of(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    response = raised.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def root_path(spec: OrganizationSpec) -> str:
    return f"{spec.organization_id}/{spec.root_id}"


# -- validation as the botocore model constrains the request ------------------------------------

GENERATE, GET = "generate_organizations_access_report", "get_organizations_access_report"
VALIDATION_CASES: dict[str, tuple[str, dict[str, Any], str, str]] = {
    "short path": (GENERATE, {"EntityPath": "o-abcdefghij/r-ab"}, "entityPath", "length between 19 and 427"),
    "long path": (
        GENERATE,
        {"EntityPath": "o-abcdefghij/r-abcd/" + "1" * 420},
        "entityPath",
        "length between 19 and 427",
    ),
    "pattern": (GENERATE, {"EntityPath": "org-abcdefghij/r-abcd/x"}, "entityPath", "regular expression pattern"),
    "policy id": (
        GENERATE,
        {"EntityPath": "o-abcdefghij/r-abcd", "OrganizationsPolicyId": "p-short"},
        "organizationsPolicyId",
        "regular expression pattern",
    ),
    "job id length": (GET, {"JobId": "short"}, "jobId", "length between 36 and 36"),
    "max items 0": (GET, {"JobId": "a" * 36, "MaxItems": 0}, "maxItems", "value between 1 and 1000"),
    "max items 1001": (GET, {"JobId": "a" * 36, "MaxItems": 1001}, "maxItems", "value between 1 and 1000"),
    "marker length": (GET, {"JobId": "a" * 36, "Marker": "m" * 321}, "marker", "length between 1 and 320"),
    "marker characters": (GET, {"JobId": "a" * 36, "Marker": "\u0100\u0101"}, "marker", "regular expression pattern"),
    "sort key": (GET, {"JobId": "a" * 36, "SortKey": "NEWEST_FIRST"}, "sortKey", "enum value set"),
}


@pytest.mark.parametrize("case", VALIDATION_CASES, ids=list(VALIDATION_CASES))
def test_values_outside_the_model_are_validation_errors_naming_the_field(demo_org: OrganizationSpec, case: str) -> None:
    operation, request, field, constraint = VALIDATION_CASES[case]
    unvalidated = client("iam", config=RAW)  # botocore would refuse some of these before sending
    code, message, status = error_of(getattr(unvalidated, operation), **request)
    assert (code, status) == ("ValidationError", 400)
    assert f"at '{field}'" in message
    assert constraint in message


# -- entity paths resolved against the organization ---------------------------------------------


def test_another_organizations_path_is_denied_at_once(demo_org: OrganizationSpec, iam: Any) -> None:
    code, message, status = error_of(
        iam.generate_organizations_access_report, EntityPath=f"o-zzzzzzzzzz/{demo_org.root_id}"
    )
    assert (code, status) == ("AccessDenied", 403)
    assert message == "The organization ID in the specified entity path is different than your organization ID."


def test_an_account_without_an_organization_is_denied(aws: None, iam: Any) -> None:
    code, message, status = error_of(iam.generate_organizations_access_report, EntityPath="o-abcdefghij/r-abcd")
    assert (code, status) == ("AccessDenied", 403)
    assert "not the management account" in message


# -- job lifecycle --------------------------------------------------------------------------------


def test_a_job_is_in_progress_for_its_duration_then_completed(
    demo_org: OrganizationSpec, store: AccessReportStore, iam: Any
) -> None:
    store.configure(job_seconds=30)
    store.clock.freeze(store.clock.now())
    job_id = iam.generate_organizations_access_report(EntityPath=root_path(demo_org))["JobId"]
    running = iam.get_organizations_access_report(JobId=job_id)
    assert running["JobStatus"] == "IN_PROGRESS"
    assert "JobCompletionDate" not in running
    assert "AccessDetails" not in running
    store.clock.advance(30)
    done = iam.get_organizations_access_report(JobId=job_id)
    assert done["JobStatus"] == "COMPLETED"
    assert (done["JobCompletionDate"] - done["JobCreationDate"]).total_seconds() == 30
    assert done["JobCreationDate"] == running["JobCreationDate"]


def test_a_target_configured_to_fail_ends_failed_with_error_details(
    demo_org: OrganizationSpec, store: AccessReportStore, iam: Any
) -> None:
    sandbox_ou = next(u for u in demo_org.ous if u.name == "Sandbox")
    store.configure(failing_paths=frozenset({demo_org.path(sandbox_ou.id)}))
    failed_id = iam.generate_organizations_access_report(EntityPath=demo_org.path(sandbox_ou.id))["JobId"]
    healthy_id = iam.generate_organizations_access_report(EntityPath=root_path(demo_org))["JobId"]
    failed = iam.get_organizations_access_report(JobId=failed_id)
    assert failed["JobStatus"] == "FAILED"
    assert failed["ErrorDetails"]["Code"]
    assert demo_org.path(sandbox_ou.id) in failed["ErrorDetails"]["Message"]
    assert "AccessDetails" not in failed
    assert "JobCompletionDate" in failed
    assert iam.get_organizations_access_report(JobId=healthy_id)["JobStatus"] == "COMPLETED"


def test_a_stuck_target_never_completes(demo_org: OrganizationSpec, store: AccessReportStore, iam: Any) -> None:
    store.configure(stuck_paths=frozenset({root_path(demo_org)}))
    job_id = iam.generate_organizations_access_report(EntityPath=root_path(demo_org))["JobId"]
    store.clock.advance(86_400)
    assert iam.get_organizations_access_report(JobId=job_id)["JobStatus"] == "IN_PROGRESS"


def test_an_unknown_job_is_no_such_entity(demo_org: OrganizationSpec, iam: Any) -> None:
    code, _, status = error_of(iam.get_organizations_access_report, JobId="00000000-0000-0000-0000-000000000000")
    assert (code, status) == ("NoSuchEntity", 404)


def test_a_fresh_mock_starts_with_no_jobs_and_default_settings() -> None:
    iam_report_emulator.install()
    with mock_aws():
        spec = apply_preset("demo")
        store = iam_report_emulator.store_for_account(spec.management_account_id)
        store.configure(job_seconds=0)
        job_id = client("iam").generate_organizations_access_report(EntityPath=root_path(spec))["JobId"]
        assert store.jobs
    with mock_aws():
        fresh = iam_report_emulator.store_for_account(spec.management_account_id)
        assert fresh.jobs == {}
        assert (fresh.settings.model.name, fresh.settings.job_seconds, fresh.settings.time_scale) == (
            "observed",
            None,
            1.0,
        )
        code, _, _ = error_of(client("iam", config=NO_RETRIES).get_organizations_access_report, JobId=job_id)
        assert code == "NoSuchEntity"


# -- report-owner rule ----------------------------------------------------------------------------


def test_only_the_generating_role_session_can_read_the_report(
    demo_org: OrganizationSpec, reporter: ReporterFactory
) -> None:
    owner = reporter("run-2026-11-24")
    job_id = owner.generate_organizations_access_report(EntityPath=root_path(demo_org))["JobId"]
    same_session_again = reporter("run-2026-11-24")  # new credentials, same role and session name
    assert same_session_again.get_organizations_access_report(JobId=job_id)["JobStatus"] == "COMPLETED"
    other_session = reporter("run-2026-11-25", config=NO_RETRIES)
    code, _message, status = error_of(other_session.get_organizations_access_report, JobId=job_id)
    assert (code, status) == ("NoSuchEntity", 404)
    unknown = error_of(other_session.get_organizations_access_report, JobId="00000000-0000-0000-0000-000000000000")
    assert unknown[0] == code  # indistinguishable from an unknown job
    caller = client("iam", config=NO_RETRIES)  # the account's default principal
    assert error_of(caller.get_organizations_access_report, JobId=job_id)[0] == "NoSuchEntity"


def test_for_iam_users_the_owner_is_the_user(demo_org: OrganizationSpec) -> None:
    admin = client("iam")
    keys = {}
    reads = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "organizations:*", "Resource": "*"}]}
    for name in ("alice", "bob"):
        admin.create_user(UserName=name)
        admin.put_user_policy(UserName=name, PolicyName="org-reads", PolicyDocument=json.dumps(reads))
        key = admin.create_access_key(UserName=name)["AccessKey"]
        keys[name] = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    alice, bob = (client("iam", config=NO_RETRIES, credentials=keys[n]) for n in ("alice", "bob"))
    job_id = alice.generate_organizations_access_report(EntityPath=root_path(demo_org))["JobId"]
    assert alice.get_organizations_access_report(JobId=job_id)["JobStatus"] == "COMPLETED"
    assert error_of(bob.get_organizations_access_report, JobId=job_id)[0] == "NoSuchEntity"


# -- limits and throttling ------------------------------------------------------------------------


def test_too_many_jobs_in_progress_is_report_generation_limit_exceeded(
    demo_org: OrganizationSpec, store: AccessReportStore, iam: Any
) -> None:
    store.configure(job_seconds=60, max_jobs_in_progress=3)
    store.clock.freeze(store.clock.now())
    paths = [demo_org.path(a.id) for a in demo_org.accounts[:4]]
    for path in paths[:3]:
        iam.generate_organizations_access_report(EntityPath=path)
    code, _, status = error_of(iam.generate_organizations_access_report, EntityPath=paths[3])
    assert (code, status) == ("ReportGenerationLimitExceeded", 409)
    store.clock.advance(60)  # the three complete, freeing capacity
    assert iam.generate_organizations_access_report(EntityPath=paths[3])["JobId"]


def test_a_rate_limit_answers_throttling_and_retries_absorb_it(
    demo_org: OrganizationSpec, store: AccessReportStore
) -> None:
    store.throttler.configure(limits={"GenerateOrganizationsAccessReport": RateLimit(rate=0.001, burst=2)})
    store.clock.freeze(store.clock.now())
    impatient = client("iam", config=NO_RETRIES)
    for _ in range(2):
        impatient.generate_organizations_access_report(EntityPath=root_path(demo_org))
    code, message, status = error_of(impatient.generate_organizations_access_report, EntityPath=root_path(demo_org))
    assert (code, message, status) == ("Throttling", "Rate exceeded", 400)
    assert store.throttler.counters.throttled["GenerateOrganizationsAccessReport"] == 1
    assert store.throttler.counters.calls["GenerateOrganizationsAccessReport"] == 3


def test_a_failure_rate_throttles_that_share_of_calls(demo_org: OrganizationSpec, store: AccessReportStore) -> None:
    store.throttler.configure(failure_rate=0.3, seed=11)
    impatient = client("iam", config=NO_RETRIES)
    outcomes = []
    for _ in range(300):
        try:
            impatient.generate_organizations_access_report(EntityPath=root_path(demo_org))
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    assert set(outcomes) == {"ok", "Throttling"}
    assert 0.22 < outcomes.count("Throttling") / len(outcomes) < 0.38
    assert store.throttler.counters.throttled["GenerateOrganizationsAccessReport"] == outcomes.count("Throttling")


def test_standard_retries_absorb_injected_throttling(demo_org: OrganizationSpec, store: AccessReportStore) -> None:
    store.throttler.configure(failure_rate=0.3, seed=5)
    patient = client("iam")  # standard mode, 10 attempts
    job_id = patient.generate_organizations_access_report(EntityPath=root_path(demo_org))["JobId"]
    for _ in range(10):
        assert patient.get_organizations_access_report(JobId=job_id)["JobStatus"] == "COMPLETED"
    counters = store.throttler.counters
    throttled = sum(counters.throttled.values())
    assert throttled > 0
    assert sum(counters.calls.values()) == 11 + throttled  # each throttled call was retried until it succeeded
