"""What a completed report says: the documented example, scopes, SCPs, pages and sort orders."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

import iam_report_emulator
from harness.clients import client, role_session_client
from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.catalog import load_catalog
from iam_report_emulator.presets import (
    EXAMPLE_JOB_ID,
    EXAMPLE_MANAGEMENT_ACCOUNT,
    EXAMPLE_OU_PATH,
    apply_preset,
)
from iam_report_emulator.seed import SANDBOX_ALLOWED, OrganizationSpec
from tests.conftest import REPORTER_ROLE
from tests.documented_example import DOCUMENTED_RESPONSE
from tests.helpers import complete_report, expected_usage, subtree_accounts


def ou(spec: OrganizationSpec, name: str) -> str:
    return next(u.id for u in spec.ous if u.name == name)


def report_of(iam: Any, path: str, **generate: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    job_id = iam.generate_organizations_access_report(EntityPath=path, **generate)["JobId"]
    return complete_report(iam, job_id, MaxItems=1000)


def test_the_example_preset_returns_the_documented_response(aws: None) -> None:
    apply_preset("example")
    role = f"arn:aws:iam::{EXAMPLE_MANAGEMENT_ACCOUNT}:role/{REPORTER_ROLE}"
    iam = role_session_client("iam", role, "docs-example")
    assert iam.generate_organizations_access_report(EntityPath=EXAMPLE_OU_PATH)["JobId"] == EXAMPLE_JOB_ID
    iam_report_emulator.store_for_account(EXAMPLE_MANAGEMENT_ACCOUNT).clock.advance(4)
    response = iam.get_organizations_access_report(JobId=EXAMPLE_JOB_ID)
    response.pop("ResponseMetadata")
    assert response == DOCUMENTED_RESPONSE


def assert_matches_ground_truth(spec: OrganizationSpec, details: list[dict[str, Any]], accounts: set[str]) -> None:
    truth = expected_usage(spec, accounts, datetime.now(UTC))
    used = {d["ServiceNamespace"]: d for d in details if "LastAuthenticatedTime" in d}
    assert set(used) == set(truth)
    for namespace, (when, account, count) in truth.items():
        detail = used[namespace]
        assert detail["LastAuthenticatedTime"] == when
        assert detail["EntityPath"] == spec.path(account)
        assert detail["TotalAuthenticatedEntities"] == count
    for detail in details:
        if "LastAuthenticatedTime" not in detail:
            assert detail["TotalAuthenticatedEntities"] == 0
            # Observed live: a never-used `iam` row still carries Region us-east-1, no other one a Region.
            assert detail.get("Region") == ("us-east-1" if detail["ServiceNamespace"] == "iam" else None)
            assert "EntityPath" not in detail


def test_the_root_covers_every_account_but_the_management_account(demo_org: OrganizationSpec, iam: Any) -> None:
    first, details = report_of(iam, f"{demo_org.organization_id}/{demo_org.root_id}")
    assert {d["ServiceNamespace"] for d in details} == set(load_catalog().services)  # FullAWSAccess at the root
    members = {a.id for a in demo_org.accounts}
    assert_matches_ground_truth(demo_org, details, members)
    budgets = next(d for d in details if d["ServiceNamespace"] == "budgets")
    assert budgets["TotalAuthenticatedEntities"] == 0  # only the management account used it
    assert first["NumberOfServicesAccessible"] == len(details)
    assert first["NumberOfServicesNotAccessed"] == sum(1 for d in details if "LastAuthenticatedTime" not in d)


def test_an_ou_covers_its_subtree_and_its_scps(demo_org: OrganizationSpec, iam: Any) -> None:
    workloads = ou(demo_org, "Workloads")
    _, details = report_of(iam, demo_org.path(workloads))
    namespaces = {d["ServiceNamespace"] for d in details}
    # DenyUnusedServices on Workloads: gamelift:*, robomaker:*, braket:*, groundstation:*, iot*:*
    denied = {"gamelift", "robomaker", "braket", "groundstation"} | {
        ns for ns in load_catalog().services if ns.startswith("iot")
    }
    assert denied
    assert not namespaces & denied
    assert namespaces == set(load_catalog().services) - denied
    assert "iam" in namespaces  # an action-level deny (iam:CreateUser) leaves the service accessible
    assert_matches_ground_truth(demo_org, details, subtree_accounts(demo_org, workloads))


def test_an_allow_list_limits_the_services_and_a_deny_all_leaves_none(demo_org: OrganizationSpec, iam: Any) -> None:
    _, details = report_of(iam, demo_org.path(ou(demo_org, "Sandbox")))
    assert {d["ServiceNamespace"] for d in details} == {p.split(":")[0] for p in SANDBOX_ALLOWED}
    first, details = report_of(iam, demo_org.path(ou(demo_org, "Suspended")))
    assert (first["NumberOfServicesAccessible"], details) == (0, [])


def test_an_account_covers_itself(demo_org: OrganizationSpec, iam: Any) -> None:
    account = next(a for a in demo_org.accounts if a.parent_id == ou(demo_org, "Prod"))
    _, details = report_of(iam, demo_org.path(account.id))
    assert_matches_ground_truth(demo_org, details, {account.id})
    assert all(d["EntityPath"] == demo_org.path(account.id) for d in details if "EntityPath" in d)


def test_the_management_account_sees_every_service_and_its_own_use(demo_org: OrganizationSpec, iam: Any) -> None:
    management = demo_org.management_account_id
    _, details = report_of(iam, demo_org.path(management))
    assert len(details) == len(load_catalog().services)
    assert_matches_ground_truth(demo_org, details, {management})
    assert next(d for d in details if d["ServiceNamespace"] == "budgets")["TotalAuthenticatedEntities"] == 1


def test_a_policy_id_narrows_to_its_services_and_the_accounts_it_applies_to(
    demo_org: OrganizationSpec, iam: Any
) -> None:
    sandbox_ou = ou(demo_org, "Sandbox")
    allow_list = next(s for s in demo_org.scps if s.name == "SandboxAllowList")
    root = f"{demo_org.organization_id}/{demo_org.root_id}"
    _, details = report_of(iam, root, OrganizationsPolicyId=allow_list.id)
    assert {d["ServiceNamespace"] for d in details} == {p.split(":")[0] for p in SANDBOX_ALLOWED}
    assert_matches_ground_truth(demo_org, details, subtree_accounts(demo_org, sandbox_ou))


def test_access_older_than_400_days_is_not_reported(demo_org: OrganizationSpec, store: AccessReportStore) -> None:
    account = demo_org.accounts[0]
    assert account.parent_id == ou(demo_org, "Security")  # FullAWSAccess only: both services allowed
    now = datetime.now(UTC)
    store.activity.record(account.id, "gamelift", now - timedelta(days=401), "eu-west-1")
    store.activity.record(account.id, "braket", now - timedelta(days=399), "eu-west-1")
    iam = client("iam")
    _, details = report_of(iam, demo_org.path(account.id))
    by_namespace = {d["ServiceNamespace"]: d for d in details}
    assert "LastAuthenticatedTime" not in by_namespace["gamelift"]
    assert by_namespace["braket"]["TotalAuthenticatedEntities"] == 1


# -- pages and orders -----------------------------------------------------------------------------


def test_short_pages_are_truncated_below_max_items_and_markers_resume(
    demo_org: OrganizationSpec, store: AccessReportStore, iam: Any
) -> None:
    root = f"{demo_org.organization_id}/{demo_org.root_id}"
    job_id = iam.generate_organizations_access_report(EntityPath=root)["JobId"]
    _, whole = complete_report(iam, job_id, MaxItems=1000)
    store.configure(short_page_items=7)
    page = iam.get_organizations_access_report(JobId=job_id, MaxItems=1000)
    assert len(page["AccessDetails"]) == 7
    assert page["IsTruncated"] is True
    _, paged = complete_report(iam, job_id, MaxItems=1000)
    assert paged == whole
    store.configure(short_page_items=None)
    default = iam.get_organizations_access_report(JobId=job_id)
    assert len(default["AccessDetails"]) == 100  # IAM's default MaxItems


def test_markers_are_checked_as_iam_was_observed(demo_org: OrganizationSpec, iam: Any) -> None:
    root = f"{demo_org.organization_id}/{demo_org.root_id}"
    job_id = iam.generate_organizations_access_report(EntityPath=root)["JobId"]
    first = iam.get_organizations_access_report(JobId=job_id, MaxItems=5)
    # A marker works with another MaxItems: the next page starts where the first ended
    wider = iam.get_organizations_access_report(JobId=job_id, MaxItems=7, Marker=first["Marker"])
    narrow = iam.get_organizations_access_report(JobId=job_id, MaxItems=5, Marker=first["Marker"])
    assert wider["AccessDetails"][:5] == narrow["AccessDetails"]
    assert len(wider["AccessDetails"]) == 7
    other = iam.generate_organizations_access_report(EntityPath=f"{root}/{demo_org.ous[0].id}")["JobId"]
    cases = [
        ({"Marker": first["Marker"], "SortKey": "SERVICE_NAMESPACE_DESCENDING"}, job_id, "InvalidInput",
         "The marker passed in the request was invalid."),
        ({"Marker": first["Marker"]}, other, "InvalidInput", "The marker passed in the request was invalid."),
        ({"Marker": "not-a-marker"}, job_id, "ValidationError", "Invalid Marker."),
    ]  # fmt: skip
    for request, job, code, message in cases:
        with pytest.raises(ClientError) as raised:
            iam.get_organizations_access_report(JobId=job, MaxItems=5, **request)
        assert (raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]) == (code, message)


def test_the_four_sort_orders(demo_org: OrganizationSpec, iam: Any) -> None:
    root = f"{demo_org.organization_id}/{demo_org.root_id}"
    job_id = iam.generate_organizations_access_report(EntityPath=root)["JobId"]

    def order(sort_key: str) -> list[dict[str, Any]]:
        return complete_report(iam, job_id, MaxItems=50, SortKey=sort_key)[1]

    ascending = [d["ServiceNamespace"] for d in order("SERVICE_NAMESPACE_ASCENDING")]
    assert ascending == sorted(ascending)
    assert [d["ServiceNamespace"] for d in order("SERVICE_NAMESPACE_DESCENDING")] == ascending[::-1]
    oldest_first = order("LAST_AUTHENTICATED_TIME_ASCENDING")
    never = [d for d in oldest_first if "LastAuthenticatedTime" not in d]
    assert oldest_first[: len(never)] == never  # never-used services come first, as the oldest
    times = [d["LastAuthenticatedTime"] for d in oldest_first[len(never) :]]
    assert times == sorted(times)
    newest_first = order("LAST_AUTHENTICATED_TIME_DESCENDING")
    # and last when newest come first, in the exact reverse of their ascending order (observed live)
    assert newest_first[len(times) :] == never[::-1]
    assert [d["LastAuthenticatedTime"] for d in newest_first[: len(times)]] == sorted(times, reverse=True)


def test_the_break_glass_reading_decides_whether_an_exempting_deny_removes_its_services(
    demo_org: OrganizationSpec, iam: Any
) -> None:
    # Given an SCP on the Security OU denying two services to every principal but a break-glass role
    break_glass = {
        "Effect": "Deny",
        "Action": ["gamelift:*", "a4b:*"],
        "Resource": "*",
        "Condition": {"ArnNotLike": {"aws:PrincipalARN": ["arn:aws:iam::*:role/BreakGlass"]}},
    }
    organizations = client("organizations")
    policy_id = organizations.create_policy(
        Name="DenyGamesExceptBreakGlass",
        Description="break-glass deny",
        Type="SERVICE_CONTROL_POLICY",
        Content=json.dumps({"Version": "2012-10-17", "Statement": [break_glass]}),
    )["Policy"]["PolicySummary"]["Id"]
    security = ou(demo_org, "Security")
    organizations.attach_policy(PolicyId=policy_id, TargetId=security)
    store = iam_report_emulator.store_for_account(demo_org.management_account_id)
    path = demo_org.path(security)
    # When the report is read with the Deny ignored (the default), then with it applied
    first_job = iam.generate_organizations_access_report(EntityPath=path)["JobId"]
    ignored, ignored_details = complete_report(iam, first_job, MaxItems=1000)
    store.configure(principal_exempt_denies="applied")
    store.clock.advance(61)  # past the reuse window: a new job, evaluated under the new reading
    second_job = iam.generate_organizations_access_report(EntityPath=path)["JobId"]
    applied, applied_details = complete_report(iam, second_job, MaxItems=1000)
    # Then the applied reading lists exactly the two denied services fewer
    assert first_job != second_job
    assert ignored["NumberOfServicesAccessible"] - applied["NumberOfServicesAccessible"] == 2
    ignored_services = {d["ServiceNamespace"] for d in ignored_details}
    applied_services = {d["ServiceNamespace"] for d in applied_details}
    assert ignored_services - applied_services == {"gamelift", "a4b"}
    assert applied_services < ignored_services
