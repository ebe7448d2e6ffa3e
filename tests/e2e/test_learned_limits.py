"""The learned limits through the deployed definition: nobody configures IAM's job cap. Under the cap
observed live scoped per account the collector stays at one job and one lane with few refused probes;
scoped per path (IAM admits a job per path at once) discover's first starts find that out before the
lanes are decided, the probes raise the level during the run, and the next run plans with it."""

from __future__ import annotations

import pytest

from harness.clients import client
from iam_report_emulator import store_for_account
from iam_report_emulator.iam_model import model_named
from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.collect.limits import LimitState
from tests.e2e.conftest import FAST, TIME_SCALE, Collector
from tests.helpers import organization_targets


def learned(organization_id: str) -> LimitState:
    dynamodb = client("dynamodb")
    (table,) = dynamodb.list_tables()["TableNames"]
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": organization_id}}, ConsistentRead=True)["Item"]
    return LimitState.from_item(item)


@pytest.mark.parametrize("scope", ["account", "path"])
def test_the_job_cap_is_learned_within_a_run_and_the_next_run_plans_with_it(
    collector: Collector, demo_org: OrganizationSpec, scope: str
) -> None:
    store = store_for_account(demo_org.management_account_id)
    store.configure(model=model_named("observed", scope), job_seconds=None, time_scale=TIME_SCALE)
    targets = organization_targets(demo_org)
    options = {**FAST, "batch_size": 4}  # batches enough for every lane
    first = collector.run(options)
    assert first.status == "SUCCEEDED", first.cause
    # Nothing learned yet: discover measured the cap before deciding the lanes (one refused start at most)
    assert first.run["lanes"] == (1 if scope == "account" else 4)
    summary = first.output["finalize"]["summary"]
    assert summary["jobs_by_status"] == {"COMPLETED": targets}  # every refusal absorbed
    state = learned(demo_org.organization_id)
    generate_calls = store.throttler.counters.calls["GenerateOrganizationsAccessReport"]
    assert generate_calls - store.limit_exceeded == targets
    if scope == "account":
        assert state.admitted == 1  # IAM never ran two of ours at once
        assert store.limit_exceeded <= 3  # the probes, each refused once, further and further apart
        assert state.probe_wait > 60  # backed off
    else:
        assert state.admitted >= 5  # found during the run, from one
        assert store.limit_exceeded <= 3
    second = collector.run(options)
    assert second.status == "SUCCEEDED", second.cause
    # planned with what the first run learned
    assert second.run["lanes"] == (1 if scope == "account" else min(4, second.run["batches"]))
    assert first.run["batches"] >= 4
    assert second.output["finalize"]["summary"]["jobs_by_status"] == {"COMPLETED": second.run["targets"]}
