"""The collector never sends IAM an entity path ending with '/': IAM accepts such a path and fails its job
(INVALID_ORGANIZATIONS_ENTITY_PATH, observed live), and Organizations' own OU `Path` fields end with one, so
ids copied from them into `include_ids`/`exclude_ids` are the way one would get there."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.seed import OrganizationSpec
from tests.collector_run import run_by_hand, snapshot
from tests.helpers import ou_id

DAY = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def account_id(spec: OrganizationSpec, name: str) -> str:
    return next(account.id for account in spec.accounts if account.name == name)


def selected_paths(spec: OrganizationSpec, include: set[str], exclude: set[str]) -> set[str]:
    """Paths of the entities (management account aside) in an included subtree and in no excluded one."""
    members = [account.id for account in spec.accounts if account.id != spec.management_account_id]
    entities = [spec.root_id, *(unit.id for unit in spec.ous), *members]
    return {
        spec.path(entity)
        for entity in entities
        if set(spec.chain(entity)) & include and not set(spec.chain(entity)) & exclude
    }


@pytest.mark.parametrize("policy_ids", [[], ["p-35efs51v"]], ids=["all SCPs", "narrowed to an SCP"])
def test_ids_written_with_a_trailing_slash_or_as_full_paths_never_reach_iam_with_one(
    s3: Any, demo_org: OrganizationSpec, store: AccessReportStore, policy_ids: list[str]
) -> None:
    # Given an execution input naming subtrees the ways an operator copies them: a bare OU id with the
    # trailing '/' of Organizations' Path field, OU paths with and without it, an account's full path,
    # and an excluded account with a trailing '/'
    sandbox, infrastructure, dev = (ou_id(demo_org, name) for name in ("Sandbox", "Infrastructure", "Dev"))
    prod_account, dev_account = account_id(demo_org, "prod-00006"), account_id(demo_org, "dev-00002")
    options = {
        "include_ids": [
            f"{sandbox}/",
            f"{demo_org.path(infrastructure)}/",
            demo_org.path(dev),
            demo_org.path(prod_account),
        ],
        "exclude_ids": [f"{dev_account}/"],
        "policy_ids": policy_ids,
    }
    expected = selected_paths(demo_org, {sandbox, infrastructure, dev, prod_account}, {dev_account})
    # When the collector runs with it
    run = run_by_hand(s3, "run-slash", DAY, options=options)
    # Then every GenerateOrganizationsAccessReport call IAM admitted made one job (none reused; the
    # refused ones are the collector's probes of IAM's job cap), so the jobs IAM holds carry the path of
    # every call: none ends with '/', and they are the selected entities'
    calls = store.throttler.counters.calls["GenerateOrganizationsAccessReport"]
    assert calls - store.limit_exceeded == len(store.jobs) == run.run["targets"] == len(expected)
    assert store.reused == 0
    sent = [job.path for job in store.jobs.values()]
    assert not [path for path in sent if path.endswith("/")]
    assert set(sent) == expected
    assert {job.policy_id for job in store.jobs.values()} == ({*policy_ids} if policy_ids else {None})
    # And IAM resolved every one of them: each job COMPLETED
    _, jobs = snapshot(s3, "2026-11-24")
    assert set(jobs["job_status"].to_pylist()) == {"COMPLETED"}
    assert set(jobs["target_path"].to_pylist()) == expected
