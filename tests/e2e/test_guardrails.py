"""Guardrail recommendations through the deployed definition, proven by applying them.

1. Every recommended SCP is created and attached in the seeded organization (Organizations
   CreatePolicy + AttachPolicy in moto) and the collector runs again: each denied service is gone from
   that target's report and `NumberOfServicesAccessible` fell by exactly the number denied there (its
   own and its ancestors' proposals), and no service used within the window disappeared anywhere.
   Whether IAM's report drops a service denied with principals exempted (the break-glass form) is not
   known: under the emulator's other reading nothing leaves the reports, and the collector still
   recognises its applied SCPs and proposes nothing again.
2. Two days: a service used again is withdrawn, and an exception that expired is proposed.
3. A 10,000-account organization: the root's and the largest OUs' proposals fit the limits.

Days pass as in `test_collection_plan`: the first day's snapshot is moved back one day after its run.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow.compute as pc
import pytest

from harness.clients import client, role_session_client
from iam_report_emulator import apply_preset, store_for_account
from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.collect.discover import organization_snapshot, select_targets, walk_organization
from lambdas.collector.config import DiscoverSettings
from lambdas.collector.guardrails.recommend import Day, Inputs, Report, ServiceUse, recommend
from lambdas.collector.models import TargetType
from lambdas.collector.names import Layout
from lambdas.collector.settings import Guardrails, environment_value
from lambdas.collector.store.storage import list_keys
from tests.conftest import REPORTER_ROLE
from tests.e2e.conftest import FAST, Collector, move_back_one_day
from tests.scp_lint import lint_scp

BREAK_GLASS = "arn:aws:iam::*:role/BreakGlass"
SCP = "SERVICE_CONTROL_POLICY"


def recommend_environment(collector: Collector) -> dict[str, str]:
    (function,) = (f for f in collector.deployment.functions.values() if f.stage == "recommend")
    return function.environment


def recommendations(collector: Collector, dt: str) -> dict[str, dict[str, Any]]:
    s3, bucket = client("s3"), collector.deployment.bucket
    prefix = f"{Layout(collector.deployment.data_prefix).recommendations}dt={dt}/"
    found = [json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) for key in list_keys(s3, bucket, prefix)]
    return {r["target"]["id"]: r for r in found}


def reports(collector: Collector, dt: str) -> dict[str, dict[str, Any]]:
    """Each target's report of the day (all SCPs): its path, count, when collected, services by last use."""
    tables = collector.tables()
    jobs = tables["report_jobs"].filter(pc.equal(tables["report_jobs"]["dt"], dt)).to_pylist()
    details = tables["access_details"].filter(pc.equal(tables["access_details"]["dt"], dt)).to_pylist()
    out = {
        j["target_id"]: {
            "path": j["target_path"],
            "count": j["services_accessible"],
            "at": j["collected_at"],
            "carried": j["carried_forward"],
            "services": {},
        }
        for j in jobs
        if j["policy_id"] is None and j["job_status"] == "COMPLETED"
    }
    for row in details:
        if row["policy_id"] is None:
            out[row["target_id"]]["services"][row["service_namespace"]] = row["last_authenticated_time"]
    return out


def apply(proposals: dict[str, dict[str, Any]]) -> int:
    """Each proposed SCP created and attached to its target, as the README tells a person to; their count."""
    organizations, applied = client("organizations"), 0
    for target_id, recommendation in sorted(proposals.items()):
        for policy in recommendation["policies"]:
            created = organizations.create_policy(
                Content=policy["content"], Description=policy["description"], Name=policy["name"], Type=SCP
            )
            organizations.attach_policy(PolicyId=created["Policy"]["PolicySummary"]["Id"], TargetId=target_id)
            applied += 1
    return applied


@pytest.mark.parametrize("reading", ["applied", "ignored"])
def test_applying_every_recommended_scp_removes_exactly_what_it_denies_and_nothing_used(
    collector: Collector, store: AccessReportStore, reading: str
) -> None:
    recommend_environment(collector)["GUARDRAIL_BREAK_GLASS_ARNS"] = environment_value([BREAK_GLASS]) or ""
    store.configure(principal_exempt_denies=reading)
    first = collector.run()
    assert first.status == "SUCCEEDED", first.cause
    day1 = first.run["dt"]
    proposals = {t: r for t, r in recommendations(collector, day1).items() if r["status"] == "PROPOSED"}
    assert {r["target"]["type"] for r in proposals.values()} == {"ROOT", "ORGANIZATIONAL_UNIT"}
    for recommendation in proposals.values():
        for policy in recommendation["policies"]:
            assert lint_scp(policy["content"]) == []
            assert policy["chars"] == len(policy["content"].encode()) <= 5_120
            assert json.loads(policy["content"])["Statement"][0]["Condition"] == {
                "ArnNotLike": {"aws:PrincipalARN": BREAK_GLASS}
            }
    denied_at = {t: {s["namespace"] for s in r["services"]} for t, r in proposals.items()}
    before = reports(collector, day1)
    applied = apply(proposals)
    assert applied >= len(proposals)

    move_back_one_day(collector, day1)
    time.sleep(store.settings.reuse_seconds + 0.1)  # IAM reuses a path's report for a while
    second = collector.run({**FAST, "account_refresh_days": 1})  # every account collected again
    assert second.status == "SUCCEEDED", second.cause
    day2 = second.run["dt"]
    after = reports(collector, day2)

    assert set(after) == set(before)
    removed = 0
    for target_id, was in before.items():
        now = after[target_id]
        assert not now["carried"]
        chain = was["path"].split("/")[1:]
        denied = set().union(*(denied_at.get(entity, set()) for entity in chain)) & set(was["services"])
        used = {ns for ns, last in was["services"].items() if last is not None and (was["at"] - last).days < 90}
        assert used <= set(now["services"]), f"{target_id}: a service used in the window disappeared"
        if reading == "applied":
            assert set(now["services"]) == set(was["services"]) - denied, target_id
            assert now["count"] == was["count"] - len(denied), target_id
            removed += len(denied)
        else:  # a Deny with principals exempted leaves the report as it was
            assert now["services"].keys() == was["services"].keys(), target_id
    assert (removed > 0) is (reading == "applied")

    # The next day's recommendations see the applied SCPs: nothing proposed again, the proposals done.
    again = recommendations(collector, day2)
    for target_id, denied in denied_at.items():
        r = again[target_id]
        assert r["status"] == "NOTHING_TO_DENY", (target_id, r["reason"])
        assert {s["namespace"] for s in r["withdrawn"] if s["change"] == "DONE"} == denied
        ours = [a for a in r["slots"]["attached"] if a["managed_by"] == "collector"]
        assert len(ours) == len(proposals[target_id]["policies"])
        assert r["slots"]["left"] == r["slots"]["max"] - (len(r["slots"]["attached"]) - len(ours))


def test_a_service_used_again_is_withdrawn_the_next_day_and_an_expired_exception_is_proposed(
    collector: Collector, demo_org: OrganizationSpec, store: AccessReportStore
) -> None:
    counts: dict[str, int] = {}
    for account in demo_org.accounts:
        counts[account.parent_id] = counts.get(account.parent_id, 0) + 1
    # An OU under FullAWSAccess all the way (an allow-list SCP elsewhere may not allow the service at all),
    # and a service nobody in the organization uses and no seeded SCP denies.
    open_ous = [o for o in demo_org.ous if not set(demo_org.chain(o.id)) & demo_org.full_access_detached]
    ou = max((o for o in open_ous if o.name != "Suspended"), key=lambda o: counts.get(o.id, 0))
    kept_one, today = "a4b", datetime.now(UTC).date()
    assert kept_one not in {activity.namespace for activity in demo_org.activity}
    exception = {"target_id": ou.id, "services": [kept_one], "expires": today.isoformat(), "reason": "pilot"}
    environment = recommend_environment(collector)
    environment["GUARDRAIL_EXCEPTIONS"] = environment_value([exception]) or ""
    first = collector.run()
    assert first.status == "SUCCEEDED", first.cause
    day1 = first.run["dt"]
    r1 = recommendations(collector, day1)[ou.id]
    assert r1["status"] == "PROPOSED"
    assert {"namespace": kept_one, "why": f"exception until {today}: pilot"} in r1["kept"]
    proposed = [s["namespace"] for s in r1["services"]]
    assert kept_one not in proposed
    used_again = proposed[0]
    account = next(a for a in demo_org.accounts if a.parent_id == ou.id)
    store.activity.record(account.id, used_again, store.clock.now(), "eu-west-1")

    move_back_one_day(collector, day1)  # day 1 is yesterday now: the exception ended with it
    environment["GUARDRAIL_EXCEPTIONS"] = environment_value([{**exception, "expires": day1_minus(day1)}]) or ""
    time.sleep(store.settings.reuse_seconds + 0.1)
    second = collector.run()
    assert second.status == "SUCCEEDED", second.cause
    r2 = recommendations(collector, second.run["dt"])[ou.id]
    changes = {s["namespace"]: s["change"] for s in r2["services"]}
    assert changes[kept_one] == "NEW"
    assert {ns for ns, change in changes.items() if change == "NEW"} == {kept_one}
    (withdrawn,) = r2["withdrawn"]
    assert (withdrawn["namespace"], withdrawn["change"]) == (used_again, "WITHDRAWN")
    assert withdrawn["reason"].startswith("used again")
    assert [e["services"] for e in r2["expired_exceptions"]] == [[kept_one]]
    alert = collector.alerts()[-1]
    actions = alert["Message"].split("\nWHAT TO DO\n")[1].split("\n\n")[0]
    (line,) = [line for line in actions.splitlines() if f"(OU {ou.id}): deny" in line]
    assert line.startswith(f"- Review the guardrail for {ou.name} (OU {ou.id}): deny ")
    assert line.endswith("; 1 new, 1 withdrawn")
    assert "new guardrail proposal" in alert["Subject"]


def day1_minus(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def test_a_10000_account_organizations_root_and_largest_ous_proposals_fit_the_limits(aws: None) -> None:
    spec = apply_preset("large", seed=7)
    store = store_for_account(spec.management_account_id)
    store.configure(job_seconds=0)
    role = f"arn:aws:iam::{spec.management_account_id}:role/{REPORTER_ROLE}"
    organizations = role_session_client("organizations", role, "guardrails")
    iam = role_session_client("iam", role, "guardrails")
    tree = walk_organization(organizations)
    settings = DiscoverSettings.model_validate(
        {"report_role_arn": role, "limits_table": "limits", "data_bucket": "data-bucket", "scope": "all"}
    )
    targets = select_targets(tree, settings)
    now = store.clock.now()
    snapshot = organization_snapshot(tree, organizations, targets, accounts_too=False, now=now)
    scopes = snapshot.accounts_by_scope()
    ous = sorted(
        (n for n in snapshot.nodes if n.type is TargetType.ORGANIZATIONAL_UNIT),
        key=lambda n: len(scopes.get(n.id, [])),
        reverse=True,
    )
    (root,) = (n for n in snapshot.nodes if n.type is TargetType.ROOT)
    rules = Guardrails(guardrail_break_glass_arns=[BREAK_GLASS])
    for node in [root, *ous[:3]]:
        job = iam.generate_organizations_access_report(EntityPath=node.path)["JobId"]
        pages, marker = [], None
        while True:
            page = iam.get_organizations_access_report(JobId=job, **({"Marker": marker} if marker else {}))
            assert page["JobStatus"] == "COMPLETED"
            pages.extend(page.get("AccessDetails", []))
            marker = page.get("Marker")
            if not page.get("IsTruncated"):
                break
        services = tuple(
            ServiceUse(d["ServiceNamespace"], d["ServiceName"], d.get("LastAuthenticatedTime")) for d in pages
        )
        r = recommend(
            Inputs(
                node=node,
                report=Report(collected_at=store.clock.now(), age_days=0, services=services),
                failed_today=None,
                accounts=scopes.get(node.id, []),
                inherited=[],
                previous=(),
                cadence_days=0,
            ),
            rules,
            Day(dt=now.date(), run_id="scale", organization_id=snapshot.organization_id),
        )
        assert r.status.value == "PROPOSED", (node.id, r.reason)
        assert r.slots is not None
        assert 1 <= len(r.policies) <= r.slots.left
        assert all(p.chars <= rules.scp_max_chars for p in r.policies)
        assert not r.left_out
        for policy in r.policies:
            assert lint_scp(policy.content) == []
        accounted = len(r.services) + r.used_within_window + len(r.kept) + len(r.already_denied)
        assert accounted == len(services)  # every allowed service proposed or kept for a reason
        print(
            f"{node.type.value} {node.id}: {len(scopes.get(node.id, []))} accounts, {len(services)} allowed, "
            f"{len(r.services)} proposed in {len(r.policies)} SCPs of {[p.chars for p in r.policies]} chars, "
            f"{r.slots.left} slots left"
        )
