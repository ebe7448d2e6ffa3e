"""Reports read through boto3 under mock_aws list IAM's captured services, with never-used rows and the
null-time order as IAM was observed to answer them."""

from __future__ import annotations

from typing import Any

import pytest

import iam_report_emulator
from harness.clients import role_session_client
from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.catalog import read_capture
from iam_report_emulator.presets import EXAMPLE_OU_PATH, apply_preset
from iam_report_emulator.seed import OrganizationSpec
from tests.conftest import REPORTER_ROLE
from tests.helpers import complete_report

CAPTURED = {row["namespace"]: row["name"] for row in read_capture()["services"]}
BY_RANK = [row["namespace"] for row in sorted(read_capture()["services"], key=lambda row: row["time_sort_rank"])]
NAME_ONLY = {"ServiceName", "ServiceNamespace", "TotalAuthenticatedEntities"}


@pytest.fixture
def instant(store: AccessReportStore) -> AccessReportStore:
    """The demo organization's store, its jobs complete at once (these tests are about content, not timing)."""
    store.configure(job_seconds=0)
    return store


def report_of(iam: Any, path: str, **get: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    job_id = iam.generate_organizations_access_report(EntityPath=path)["JobId"]
    return complete_report(iam, job_id, **get)


def root(spec: OrganizationSpec) -> str:
    return f"{spec.organization_id}/{spec.root_id}"


def test_a_root_whose_scps_allow_everything_lists_exactly_the_456_captured_services(
    demo_org: OrganizationSpec, instant: AccessReportStore, iam: Any
) -> None:
    first, details = report_of(iam, root(demo_org), MaxItems=1000)
    assert len(details) == first["NumberOfServicesAccessible"] == 456
    assert {d["ServiceNamespace"]: d["ServiceName"] for d in details} == CAPTURED


def test_the_management_account_lists_exactly_the_456_captured_services(
    demo_org: OrganizationSpec, instant: AccessReportStore, iam: Any
) -> None:
    _, details = report_of(iam, demo_org.path(demo_org.management_account_id), MaxItems=1000)
    assert {d["ServiceNamespace"]: d["ServiceName"] for d in details} == CAPTURED


def test_never_used_rows_carry_only_their_names_and_zero_but_iam_also_its_region(
    demo_org: OrganizationSpec, instant: AccessReportStore, iam: Any
) -> None:
    instant.activity.clear()
    first, details = report_of(iam, root(demo_org), MaxItems=1000)
    assert first["NumberOfServicesNotAccessed"] == 456
    by_namespace = {d["ServiceNamespace"]: d for d in details}
    assert by_namespace.pop("iam") == {
        "ServiceName": "AWS Identity and Access Management",
        "ServiceNamespace": "iam",
        "Region": "us-east-1",
        "TotalAuthenticatedEntities": 0,
    }
    assert all(set(d) == NAME_ONLY and d["TotalAuthenticatedEntities"] == 0 for d in by_namespace.values())


def test_used_rows_keep_region_path_time_and_count(
    demo_org: OrganizationSpec, instant: AccessReportStore, iam: Any
) -> None:
    _, details = report_of(iam, root(demo_org), MaxItems=1000)
    used = [d for d in details if "LastAuthenticatedTime" in d]
    assert used
    assert all(set(d) == NAME_ONLY | {"Region", "EntityPath", "LastAuthenticatedTime"} for d in used)
    assert all(d["TotalAuthenticatedEntities"] >= 1 for d in used)


def test_without_times_the_time_orders_are_iams_captured_order_and_its_reverse(
    demo_org: OrganizationSpec, instant: AccessReportStore, iam: Any
) -> None:
    instant.activity.clear()
    job_id = iam.generate_organizations_access_report(EntityPath=root(demo_org))["JobId"]

    def order(sort_key: str) -> list[str]:
        return [d["ServiceNamespace"] for d in complete_report(iam, job_id, MaxItems=100, SortKey=sort_key)[1]]

    assert order("LAST_AUTHENTICATED_TIME_ASCENDING") == BY_RANK
    assert order("LAST_AUTHENTICATED_TIME_DESCENDING") == BY_RANK[::-1]


@pytest.mark.parametrize("preset", ["example", "demo", "small"])
def test_the_presets_still_produce_reports(aws: None, preset: str) -> None:
    spec = apply_preset(preset, seed=11)
    iam_report_emulator.store_for_account(spec.management_account_id).configure(job_seconds=0)
    role = f"arn:aws:iam::{spec.management_account_id}:role/{REPORTER_ROLE}"
    iam = role_session_client("iam", role, f"presets-{preset}")
    first, details = report_of(iam, root(spec), MaxItems=1000)
    assert first["NumberOfServicesAccessible"] == len(details) == 456  # FullAWSAccess at every preset's root
    assert first["NumberOfServicesNotAccessed"] < 456
    if preset == "example":
        _, details = report_of(iam, EXAMPLE_OU_PATH, MaxItems=1000)
        assert {d["ServiceNamespace"] for d in details} == {"dynamodb", "iam", "s3"}
