"""Guardrail recommendations: the window over history, stale data, newness, exceptions and expiry,
what is already denied, sizing, splitting and slots, determinism and changes since the previous day."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from lambdas.collector.guardrails import scp_text
from lambdas.collector.guardrails.existing import denied, deny_patterns
from lambdas.collector.guardrails.recommend import Day, Inputs, Report, ServiceUse, recommend
from lambdas.collector.guardrails.recommendation import Change, Status
from lambdas.collector.models import TargetType
from lambdas.collector.organization import AttachedScp, Manager, Node
from lambdas.collector.settings import GuardrailException, Guardrails
from tests.scp_lint import catalog_namespaces, lint_scp

TODAY = date(2026, 12, 3)
REPORT_AT = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
ORG = "o-abcdefghij"
ROOT = Node(id="r-ab12", type=TargetType.ROOT, name="Root", path=f"{ORG}/r-ab12", scps=())
OU = Node(
    id="ou-ab12-prod0001",
    type=TargetType.ORGANIZATIONAL_UNIT,
    name="Prod",
    path=f"{ROOT.path}/ou-ab12-prod0001",
    scps=(),
)
DAY = Day(dt=TODAY, run_id="run-1", organization_id=ORG)


def account(n: int, *, joined_days_ago: int, under: Node = OU) -> Node:
    account_id = f"{n:012d}"
    return Node(
        id=account_id,
        type=TargetType.ACCOUNT,
        path=f"{under.path}/{account_id}",
        joined=REPORT_AT - timedelta(days=joined_days_ago),
    )


OLD = [account(1, joined_days_ago=900), account(2, joined_days_ago=500)]


def used(namespace: str, days_ago: int | None) -> ServiceUse:
    return ServiceUse(namespace, namespace.upper(), None if days_ago is None else REPORT_AT - timedelta(days=days_ago))


def inputs(services: list[ServiceUse], *, node: Node = OU, **changes: object) -> Inputs:
    values: dict[str, object] = {
        "node": node,
        "report": Report(collected_at=REPORT_AT, age_days=0, services=tuple(services)),
        "failed_today": None,
        "accounts": OLD,
        "inherited": (),
        "previous": frozenset(),
        "cadence_days": 0,
    }
    values.update(changes)
    return Inputs(**values)  # type: ignore[arg-type]


def proposed(recommendation: object) -> list[str]:
    return [s.namespace for s in recommendation.services]  # type: ignore[attr-defined]


def test_a_service_unused_for_the_window_is_proposed_and_one_used_within_it_is_not() -> None:
    services = [used("ec2", 1), used("gamelift", 91), used("kafka", 89), used("a4b", None)]
    r = recommend(inputs(services), Guardrails(), DAY)
    assert r.status is Status.PROPOSED
    assert proposed(r) == ["a4b", "gamelift"]
    assert r.used_within_window == 2
    by_ns = {s.namespace: s for s in r.services}
    assert by_ns["gamelift"].days_unused == 91
    assert by_ns["a4b"].last_used is None
    assert by_ns["a4b"].days_unused == 400  # never used: the whole evidence, IAM's 400 days at most


def test_the_root_waits_180_days_by_default() -> None:
    services = [used("gamelift", 120), used("a4b", 200)]
    r = recommend(inputs(services, node=ROOT, accounts=OLD), Guardrails(), DAY)
    assert r.window_days == 180
    assert proposed(r) == ["a4b"]


def test_days_unused_are_counted_to_the_reports_own_time_not_today() -> None:
    # The report is two days old (an account on its cadence): 89 days before it is not yet 90.
    report = Report(collected_at=REPORT_AT - timedelta(days=2), age_days=2, services=(used("gamelift", 91),))
    node = account(7, joined_days_ago=900)
    r = recommend(inputs([], node=node, report=report, accounts=[node], cadence_days=7), Guardrails(), DAY)
    assert r.status is Status.NOTHING_TO_DENY
    assert r.used_within_window == 1


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"failed_today": "TimedOut"}, "today's report job ended TimedOut"),
        ({"report": Report(collected_at=REPORT_AT - timedelta(days=1), age_days=1, services=())}, "1 days old"),
        ({"report": None}, "no report of this target"),
    ],
)
def test_a_target_without_a_current_report_holds_yesterdays_proposal_and_says_why(
    changes: dict[str, Any], reason: str
) -> None:
    services = [used("gamelift", 300), used("kafka", 300)]
    r = recommend(inputs(services, previous={"gamelift"}, **changes), Guardrails(), DAY)
    assert r.status is Status.HELD
    assert reason in (r.reason or "")
    assert "no new proposal today" in (r.reason or "")
    assert proposed(r) == ["gamelift"]  # kafka would be new: not today
    assert all(s.change is Change.UNCHANGED for s in r.services)
    assert [p.content for p in r.policies] == [scp_text.render(["gamelift"])]


def test_a_scope_whose_accounts_all_joined_within_the_window_is_no_evidence() -> None:
    recent = [account(3, joined_days_ago=30), account(4, joined_days_ago=60)]
    r = recommend(inputs([used("gamelift", None)], accounts=recent, previous={"gamelift"}), Guardrails(), DAY)
    assert r.status is Status.NO_EVIDENCE
    assert "joined within the 90-day window" in (r.reason or "")
    assert r.scope.evidence_days == 60
    assert r.scope.joined_within_window == 2
    assert not r.policies
    assert [(s.namespace, s.change) for s in r.withdrawn] == [("gamelift", Change.WITHDRAWN)]


def test_an_ou_without_accounts_gets_no_proposal() -> None:
    r = recommend(inputs([used("gamelift", None)], accounts=[]), Guardrails(), DAY)
    assert r.status is Status.NO_EVIDENCE
    assert "no member account" in (r.reason or "")


def test_an_ou_with_some_recent_accounts_is_judged_by_the_older_ones_and_says_how_many_are_recent() -> None:
    mixed = [*OLD, account(5, joined_days_ago=10)]
    r = recommend(inputs([used("gamelift", None)], accounts=mixed), Guardrails(), DAY)
    assert proposed(r) == ["gamelift"]
    assert (r.scope.accounts, r.scope.joined_within_window, r.scope.evidence_days) == (3, 1, 400)


def test_never_deny_services_and_unexpired_exceptions_are_kept_and_an_expired_exception_is_dropped() -> None:
    rules = Guardrails(
        guardrail_exceptions=[
            GuardrailException(target_id=ROOT.id, services=["gamelift"], expires=TODAY, reason="game day"),
            GuardrailException(
                target_id=OU.id, services=["kafka"], expires=TODAY - timedelta(days=1), reason="migration"
            ),
        ]
    )
    services = [used("sts", None), used("gamelift", None), used("kafka", None), used("a4b", None)]
    r = recommend(inputs(services), rules, DAY)
    assert proposed(r) == ["a4b", "kafka"]
    assert {k.namespace: k.why for k in r.kept} == {
        "sts": "never_deny",
        "gamelift": f"exception until {TODAY}: game day",  # set on the root: binds the OU under it
    }
    assert [(e.target_id, e.services, e.reason) for e in r.expired_exceptions] == [(OU.id, ["kafka"], "migration")]


def test_services_an_attached_or_inherited_scp_already_denies_are_not_proposed_again() -> None:
    ours = AttachedScp(
        id="p-ours0001",
        name="org-access-report-unused-ou-ab12-prod0001-1",
        managed_by=Manager.COLLECTOR,
        denies=("a4b:*",),
    )
    above = AttachedScp(
        id="p-ctguard1", name="aws-guardrails-xyz", managed_by=Manager.CONTROL_TOWER, denies=("game*:*",)
    )
    node = OU.model_copy(update={"scps": (ours,)})
    services = [used("a4b", None), used("gamelift", None), used("kafka", None)]
    r = recommend(inputs(services, node=node, inherited=(above,), previous={"a4b"}), Guardrails(), DAY)
    assert proposed(r) == ["kafka"]
    assert r.already_denied == ["a4b", "gamelift"]
    assert [(s.namespace, s.change) for s in r.withdrawn] == [("a4b", Change.DONE)]
    assert r.slots is not None
    assert r.slots.left == 10


def test_a_large_proposal_is_split_into_scps_within_the_size_each_and_within_the_slots_left() -> None:
    namespaces = sorted(catalog_namespaces())[:300]
    rules = Guardrails(scp_max_chars=1_024, scp_max_per_target=5, guardrail_never_deny=[])
    attached = tuple(
        AttachedScp(id=f"p-other{n:04d}", name=f"custom-{n}", managed_by=Manager.CUSTOMER) for n in range(2)
    )
    node = OU.model_copy(update={"scps": attached})
    r = recommend(inputs([used(ns, None) for ns in namespaces], node=node), rules, DAY)
    assert r.slots is not None
    assert r.slots.left == 3
    assert len(r.policies) == 3
    assert all(p.chars == len(p.content.encode()) <= 1_024 for p in r.policies)
    covered = [
        ns for p in r.policies for ns in (a.removesuffix(":*") for a in json.loads(p.content)["Statement"][0]["Action"])
    ]
    assert covered == proposed(r)
    assert sorted(covered + r.left_out) == namespaces  # nothing lost: proposed or listed as left out
    assert r.left_out
    assert "no attachment slot left" in (r.reason or "")


def test_no_slot_left_at_all_proposes_nothing_and_says_so() -> None:
    attached = tuple(AttachedScp(id=f"p-other{n:04d}", name=f"c{n}", managed_by=Manager.CUSTOMER) for n in range(10))
    r = recommend(inputs([used("gamelift", None)], node=OU.model_copy(update={"scps": attached})), Guardrails(), DAY)
    assert r.status is Status.NO_SLOT
    assert r.left_out == ["gamelift"]


def test_the_text_is_deterministic_whatever_the_order_of_the_report() -> None:
    services = [used(ns, None) for ns in ("kafka", "a4b", "gamelift")]
    rules = Guardrails(guardrail_break_glass_arns=["arn:aws:iam::*:role/BreakGlass", "arn:aws:iam::*:role/Admin"])
    one = recommend(inputs(services), rules, DAY)
    two = recommend(inputs(list(reversed(services))), rules, DAY)
    assert [p.content for p in one.policies] == [p.content for p in two.policies]
    assert one.policies[0].content == (
        '{"Version":"2012-10-17","Statement":[{"Sid":"DenyUnusedServices","Effect":"Deny",'
        '"Action":["a4b:*","gamelift:*","kafka:*"],"Resource":"*","Condition":{"ArnNotLike":'
        '{"aws:PrincipalARN":["arn:aws:iam::*:role/Admin","arn:aws:iam::*:role/BreakGlass"]}}}]}'
    )


def test_compact_forms_one_action_and_one_principal_are_strings() -> None:
    text = scp_text.render(["gamelift"], ["arn:aws:iam::*:role/BreakGlass"])
    statement = json.loads(text)["Statement"][0]
    assert statement["Action"] == "gamelift:*"
    assert statement["Condition"] == {"ArnNotLike": {"aws:PrincipalARN": "arn:aws:iam::*:role/BreakGlass"}}
    assert len(text) < len(json.dumps(json.loads(text), indent=1))


def test_changes_since_the_previous_day_new_unchanged_withdrawn_used_again() -> None:
    services = [used("a4b", None), used("gamelift", 3), used("kafka", None)]
    r = recommend(inputs(services, previous={"a4b", "gamelift"}), Guardrails(), DAY)
    assert [(s.namespace, s.change) for s in r.services] == [("a4b", Change.UNCHANGED), ("kafka", Change.NEW)]
    (withdrawn,) = r.withdrawn
    assert (withdrawn.namespace, withdrawn.change) == ("gamelift", Change.WITHDRAWN)
    assert withdrawn.reason is not None
    assert withdrawn.reason.startswith("used again")
    assert r.new == 1


def test_every_proposal_passes_the_policy_linter() -> None:
    rules = Guardrails(scp_max_chars=2_048, guardrail_break_glass_arns=["arn:aws:iam::*:role/BreakGlass"])
    r = recommend(inputs([used(ns, None) for ns in sorted(catalog_namespaces())]), rules, DAY)
    assert len(r.policies) > 1
    for policy in r.policies:
        assert lint_scp(policy.content) == []


@pytest.mark.parametrize(
    ("statement", "patterns"),
    [
        ({"Effect": "Deny", "Action": ["a4b:*", "s3:GetObject"], "Resource": "*"}, ("a4b:*",)),
        ({"Effect": "Deny", "Action": "Game*:*", "Resource": "*"}, ("game*:*",)),
        ({"Effect": "Deny", "Action": "*", "Resource": "*"}, ("*",)),
        (
            {
                "Effect": "Deny",
                "Action": "a4b:*",
                "Resource": "*",
                "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/BreakGlass"}},
            },
            ("a4b:*",),
        ),
        (
            {
                "Effect": "Deny",
                "Action": "a4b:*",
                "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}},
            },
            (),
        ),
        ({"Effect": "Deny", "Action": "a4b:*", "Resource": "arn:aws:s3:::b/*"}, ()),
        ({"Effect": "Allow", "Action": "*", "Resource": "*"}, ()),
        ({"Effect": "Deny", "NotAction": "a4b:*", "Resource": "*"}, ()),
    ],
)
def test_what_an_attached_scp_denies_outright(statement: dict[str, object], patterns: tuple[str, ...]) -> None:
    assert deny_patterns(json.dumps({"Version": "2012-10-17", "Statement": [statement]})) == patterns


def test_denied_patterns_cover_namespaces_by_wildcard_and_unreadable_content_denies_nothing() -> None:
    assert denied(["game*:*", "a4b:*"], ["gamelift", "gamesparks", "a4b", "ec2"]) == {"gamelift", "gamesparks", "a4b"}
    assert deny_patterns("not json") == ()


@pytest.mark.parametrize(
    ("name", "aws_managed", "manager"),
    [
        ("FullAWSAccess", True, Manager.AWS),
        ("aws-guardrails-AbCdEf", False, Manager.CONTROL_TOWER),
        ("org-access-report-unused-ou-ab12-prod0001-1", False, Manager.COLLECTOR),
        ("deny-leave-org", False, Manager.CUSTOMER),
    ],
)
def test_who_manages_an_scp(name: str, aws_managed: bool, manager: Manager) -> None:
    assert Manager.of(name, aws_managed) is manager


def test_an_exception_needs_a_reason_and_an_expiry_and_takes_a_path_as_its_id() -> None:
    exception = GuardrailException.model_validate(
        {"target_id": f"{OU.path}/", "services": ["gamelift"], "expires": "2027-01-31", "reason": "pilot"}
    )
    assert exception.target_id == OU.id
    with pytest.raises(ValueError, match="reason"):
        GuardrailException.model_validate({"target_id": OU.id, "services": ["gamelift"], "expires": "2027-01-31"})
