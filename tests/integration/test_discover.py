"""discover against the emulator's Organizations: scopes, include/exclude, policies, batches, names."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from harness.clients import client
from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.iam_model import model_named
from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.collect.discover import discover, walk_organization
from lambdas.collector.config import DiscoverSettings, load
from lambdas.collector.errors import ConfigurationError, TargetSelectionError
from lambdas.collector.models import DiscoverEvent
from lambdas.collector.services import services
from lambdas.collector.settings import Pace
from tests.collector_run import BUCKET, discover_run
from tests.helpers import ou_id

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:collector"
EVENT = DiscoverEvent(
    run_id="run-1",
    started_at=datetime(2026, 11, 24, 23, 59, tzinfo=UTC),
    state_machine_arn=MACHINE,
    execution_arn=MACHINE.replace(":stateMachine:", ":execution:") + ":run-1",
)


@pytest.fixture
def organizations(s3: Any) -> Any:
    return client("organizations")


def run_discover(s3: Any, organizations: Any, event: DiscoverEvent = EVENT) -> tuple[Any, list[dict[str, Any]]]:
    settings = load(DiscoverSettings)
    found = discover(
        event,
        settings,
        organizations,
        s3,
        limits_of=lambda org: services().limits(settings.limits_table, org),
        now=services().clock(),
    )
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=found.run.manifest_key)["Body"].read())
    return found, manifest


def targets_of(manifest: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [target for batch in manifest for target in batch["targets"]]


def test_the_walk_finds_every_entity_with_its_full_path_and_name(
    demo_org: OrganizationSpec, organizations: Any
) -> None:
    tree = walk_organization(organizations)
    assert tree.organization_id == demo_org.organization_id
    assert tree.management_account_id == demo_org.management_account_id
    paths = {entity.id: entity.path for entity in tree.entities}
    for unit in demo_org.ous:
        assert paths[unit.id] == demo_org.path(unit.id)
    for account in demo_org.accounts:
        assert paths[account.id] == demo_org.path(account.id)
    names = {entity.id: entity.name for entity in tree.entities}
    assert names[ou_id(demo_org, "Prod")] == "Prod"
    assert names[demo_org.accounts[0].id] == demo_org.accounts[0].name


def test_scope_all_is_root_every_ou_and_every_member_account_in_batches(
    demo_org: OrganizationSpec, s3: Any, organizations: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCH_SIZE", "6")
    found, manifest = run_discover(s3, organizations)
    targets = targets_of(manifest)
    members = [a for a in demo_org.accounts if a.id != demo_org.management_account_id]
    assert len(targets) == found.run.targets == 1 + len(demo_org.ous) + len(members)
    # Equal batches of at most 6, as many as fill both lanes (MAX_CONCURRENCY 2) in every wave
    sizes = [len(batch["targets"]) for batch in manifest]
    assert max(sizes) <= 6
    assert max(sizes) - min(sizes) <= 1
    assert len(sizes) % 2 == 0
    assert [batch["batch"] for batch in manifest] == list(range(found.run.batches))
    assert demo_org.management_account_id not in {t["id"] for t in targets}
    assert found.by_type == {"ROOT": 1, "ORGANIZATIONAL_UNIT": len(demo_org.ous), "ACCOUNT": len(members)}
    # The snapshot date is the run's start in UTC; the run context is all the state machine carries
    assert (found.run.dt, found.run.polling, found.run.prefix) == ("2026-11-24", Pace().polling, "")
    assert len(found.run.model_dump_json()) < 1024


def test_include_keeps_subtrees_and_exclude_removes_them(
    demo_org: OrganizationSpec, s3: Any, organizations: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    workloads, prod = ou_id(demo_org, "Workloads"), ou_id(demo_org, "Prod")
    monkeypatch.setenv("INCLUDE_IDS", json.dumps([workloads]))
    monkeypatch.setenv("EXCLUDE_IDS", json.dumps([prod]))
    _, manifest = run_discover(s3, organizations)
    chosen = {t["id"] for t in targets_of(manifest)}
    expected = {
        entity
        for entity in [*(u.id for u in demo_org.ous), *(a.id for a in demo_org.accounts)]
        if workloads in demo_org.chain(entity) and prod not in demo_org.chain(entity)
    }
    assert chosen == expected
    assert workloads in chosen
    assert prod not in chosen


@pytest.mark.parametrize(
    ("scope", "types"), [("root", {"ROOT"}), ("ous", {"ORGANIZATIONAL_UNIT"}), ("accounts", {"ACCOUNT"})]
)
def test_a_scope_selects_one_kind_of_target(
    s3: Any, organizations: Any, monkeypatch: pytest.MonkeyPatch, scope: str, types: set[str]
) -> None:
    monkeypatch.setenv("SCOPE", scope)
    _, manifest = run_discover(s3, organizations)
    assert {t["type"] for t in targets_of(manifest)} == types


def test_policy_ids_give_one_report_per_target_per_policy(
    demo_org: OrganizationSpec, s3: Any, organizations: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    policies = [p["Id"] for p in organizations.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]][:2]
    monkeypatch.setenv("SCOPE", "ous")
    monkeypatch.setenv("POLICY_IDS", json.dumps(policies))
    _, manifest = run_discover(s3, organizations)
    pairs = [(t["id"], t["policy_id"]) for t in targets_of(manifest)]
    assert sorted(pairs) == sorted((u.id, p) for u in demo_org.ous for p in policies)


def test_the_management_account_is_a_target_only_when_asked(
    demo_org: OrganizationSpec, s3: Any, organizations: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCOPE", "accounts")
    monkeypatch.setenv("INCLUDE_MANAGEMENT_ACCOUNT", "true")
    _, manifest = run_discover(s3, organizations)
    management = [t for t in targets_of(manifest) if t["id"] == demo_org.management_account_id]
    assert [t["path"] for t in management] == [
        f"{demo_org.organization_id}/{demo_org.root_id}/{demo_org.management_account_id}"
    ]


def test_per_run_polling_overrides_the_configured_one(s3: Any, organizations: Any) -> None:
    fast = {"poll_initial_wait_seconds": 0, "poll_max_wait_seconds": 1, "poll_max_attempts": 3}
    found, _ = run_discover(s3, organizations, EVENT.model_copy(update={"options": fast}))
    assert found.run.polling == Pace(**fast).polling


def test_an_execution_input_narrows_the_run_as_the_readme_says(
    demo_org: OrganizationSpec, s3: Any, organizations: Any
) -> None:
    sandbox = ou_id(demo_org, "Sandbox")
    options = {"scope": "ous", "include_ids": [f"{sandbox}/"]}  # as copied from an OU's Path: trailing '/'
    _, manifest = run_discover(s3, organizations, EVENT.model_copy(update={"options": options}))
    targets = targets_of(manifest)
    assert {t["id"] for t in targets} == {u.id for u in demo_org.ous if sandbox in demo_org.chain(u.id)}
    assert all(not t["path"].endswith("/") for t in targets)


def test_a_bad_execution_input_is_named_before_any_call(s3: Any, organizations: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"execution input: include_ids\.0"):
        run_discover(s3, organizations, EVENT.model_copy(update={"options": {"include_ids": ["ou-bad"]}}))
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_an_unknown_include_id_or_an_empty_selection_is_an_error_before_any_write(
    demo_org: OrganizationSpec, s3: Any, organizations: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INCLUDE_IDS", '["ou-zzzz-zzzzzzzz"]')
    with pytest.raises(TargetSelectionError, match="ou-zzzz-zzzzzzzz"):
        run_discover(s3, organizations)
    monkeypatch.setenv("INCLUDE_IDS", json.dumps([ou_id(demo_org, "Sandbox")]))
    monkeypatch.setenv("EXCLUDE_IDS", json.dumps([ou_id(demo_org, "Sandbox")]))
    with pytest.raises(TargetSelectionError, match="selects no target"):
        run_discover(s3, organizations)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_discover_measures_the_job_cap_before_deciding_the_lanes_and_a_small_run_takes_one(
    demo_org: OrganizationSpec, s3: Any, store: AccessReportStore
) -> None:
    # Given IAM admitting a job per path (the cap scoped per path) and nothing learned yet
    store.configure(model=model_named("observed", "path"), job_seconds=None, time_scale=0.02)
    # When a run fits in one batch
    run, manifest = discover_run(s3, "run-1", EVENT.started_at, {"batch_size": 100})
    # Then discover started the plan's first jobs (probing upward, refused never) and learned the level,
    # but decided one lane: one batch, holding the jobs in progress
    started = [job for batch in manifest for job in batch["started"]]
    assert len(started) > 4
    assert store.limit_exceeded == 0
    assert (run["lanes"], len(manifest)) == (1, 1)
    assert {job["status"] for job in started} == {"IN_PROGRESS"}
    # And a run with batches for every lane, planned with what the first learned, takes four lanes (the
    # default `max_concurrency`) without measuring again
    generated = store.throttler.counters.calls["GenerateOrganizationsAccessReport"]
    run, manifest = discover_run(s3, "run-2", EVENT.started_at, {"batch_size": 4})
    assert run["lanes"] == 4
    assert len(manifest) % 4 == 0
    assert store.throttler.counters.calls["GenerateOrganizationsAccessReport"] == generated
