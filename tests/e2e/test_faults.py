"""Fault cases through the deployed definition: each ends in a defined state, with a message that names the
cause, and nothing written that a query would count.

Malformed execution input (case 8 of the fault matrix): an unknown key, an id that is no root, OU or account,
an override out of its bounds, and a loop bound raised above the deployed one each fail discover with a
`ConfigurationError` naming the key, before any IAM call: the run ends FAILED, one "run failed" message
names the error, and no partition is written. A trailing '/' on an id is not an error: ids are taken bare,
as Organizations writes paths.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.clients import client
from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.names import Layout
from lambdas.collector.store.storage import list_keys
from tests.e2e.conftest import FAST, Collector
from tests.helpers import organization_targets


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"no_such_setting": 1}, "no_such_setting"),
        ({"include_ids": ["ou-not-an-id"]}, "include_ids"),
        ({"batch_size": 0}, "batch_size"),
        ({"poll_max_attempts": 10_000}, "poll_max_attempts"),
    ],
    ids=["unknown-key", "bad-id", "out-of-range", "loop-bound-raised"],
)
def test_malformed_input_fails_the_run_with_a_named_error_before_any_iam_call(
    collector: Collector, store: AccessReportStore, options: dict[str, Any], named: str
) -> None:
    calls_before = sum(store.throttler.counters.calls.values())
    execution = collector.run({**FAST, **options})
    assert execution.status == "FAILED"
    assert sum(store.throttler.counters.calls.values()) == calls_before  # no IAM report call at all
    (message,) = collector.alerts()
    assert message["Subject"] == "Org access report collector: run failed"
    failure = json.loads(message["Message"])
    assert failure["error"] == "ConfigurationError"
    assert named in failure["cause"]
    assert failure["what_to_do"].startswith("Fix what the error and cause name")  # then a rerun, how
    s3 = client("s3")
    layout = Layout(collector.deployment.data_prefix)
    written = list_keys(s3, collector.deployment.bucket, layout.prefix)
    assert [key for key in written if not key.startswith(layout.scratch)] == []  # no partition, no page


def test_an_id_with_a_trailing_slash_is_taken_bare(collector: Collector) -> None:
    tables_before = collector.tables()
    assert tables_before["report_jobs"].num_rows == 0
    root = client("organizations").list_roots()["Roots"][0]["Id"]
    execution = collector.run({**FAST, "scope": "root", "include_ids": [f"{root}/"]})
    assert execution.status == "SUCCEEDED", execution.cause
    (job,) = collector.tables()["report_jobs"].to_pylist()
    assert job["target_id"] == root
    assert not job["target_path"].endswith("/")


def test_an_organization_with_scps_disabled_at_the_root_fails_the_run_saying_what_to_enable(
    collector: Collector, store: AccessReportStore
) -> None:
    # Case 5: IAM's report needs SCPs enabled at the root; every job would fail, so none is started.
    organizations = client("organizations")
    root = organizations.list_roots()["Roots"][0]["Id"]
    organizations.disable_policy_type(RootId=root, PolicyType="SERVICE_CONTROL_POLICY")
    calls_before = sum(store.throttler.counters.calls.values())
    execution = collector.run()
    assert execution.status == "FAILED"
    assert sum(store.throttler.counters.calls.values()) == calls_before
    (message,) = collector.alerts()
    failure = json.loads(message["Message"])
    assert failure["error"] == "OrganizationNotReadyError"
    assert (
        f"aws organizations enable-policy-type --root-id {root} --policy-type SERVICE_CONTROL_POLICY"
        in (failure["cause"])
    )


def test_an_account_moved_and_an_ou_deleted_after_discover_fail_their_jobs_and_the_rest_completes(
    collector: Collector, demo_org: OrganizationSpec
) -> None:
    # Case 6: the organization changes shape between discover and generate.
    organizations = client("organizations")
    by_name = {ou.name: ou for ou in demo_org.ous}
    moved = next(a for a in demo_org.accounts if a.parent_id == by_name["Dev"].id)
    suspended = by_name["Suspended"]
    assert not [a for a in demo_org.accounts if a.parent_id == suspended.id]  # empty: it may be deleted

    def reshape(_: Any) -> None:
        organizations.move_account(
            AccountId=moved.id, SourceParentId=moved.parent_id, DestinationParentId=by_name["Prod"].id
        )
        organizations.delete_organizational_unit(OrganizationalUnitId=suspended.id)

    collector.lambdas.after["discover"] = [reshape]
    execution = collector.run()
    assert execution.status == "SUCCEEDED", execution.cause
    jobs = collector.tables()["report_jobs"].to_pylist()
    failed = {j["target_id"]: j for j in jobs if j["job_status"] != "COMPLETED"}
    assert set(failed) == {moved.id, suspended.id}
    assert {j["error_code"] for j in failed.values()} == {"INVALID_ORGANIZATIONS_ENTITY_PATH"}
    assert len(jobs) == organization_targets(demo_org)  # every other target completed, none twice
    message = collector.alerts()[-1]["Message"]
    assert "INVALID_ORGANIZATIONS_ENTITY_PATH: 2 report jobs FAILED" in message
    assert "the next run uses its current path" in message


def test_iam_answering_service_failure_in_bursts_changes_nothing_in_the_data(
    collector: Collector, store: AccessReportStore, demo_org: OrganizationSpec
) -> None:
    # Case 7: IAM answers ServiceFailure (500) to 2 calls after every 6: the clients' retries absorb them.
    store.configure(service_failure_bursts=(6, 2))
    execution = collector.run()
    assert execution.status == "SUCCEEDED", execution.cause
    assert store.service_failures > 0
    tables = collector.tables()
    jobs = tables["report_jobs"].to_pylist()
    assert len(jobs) == organization_targets(demo_org)
    assert {j["job_status"] for j in jobs} == {"COMPLETED"}
    details = tables["access_details"]
    assert details.num_rows == sum(j["services_accessible"] for j in jobs)
