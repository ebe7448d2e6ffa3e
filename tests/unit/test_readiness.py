"""discover's check that IAM can report on the organization at all, before any job is started."""

from __future__ import annotations

from typing import Any

from lambdas.collector.collect.discover import readiness_problems

ORG = {"Id": "o-abcdefghij", "MasterAccountId": "111122223333", "FeatureSet": "ALL"}
ROLE = "arn:aws:iam::111122223333:role/OrgAccessReportReader"
ENABLED: list[dict[str, Any]] = [
    {"Id": "r-ab12", "PolicyTypes": [{"Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED"}]}
]


def test_an_organization_with_all_features_scps_enabled_and_the_role_in_its_management_account_is_ready() -> None:
    assert readiness_problems(ORG, ENABLED, ROLE) == []


def test_consolidated_billing_only_says_to_enable_all_features() -> None:
    (problem,) = readiness_problems({**ORG, "FeatureSet": "CONSOLIDATED_BILLING"}, ENABLED, ROLE)
    assert "enable-all-features" in problem


def test_scps_disabled_or_pending_at_a_root_say_which_root_and_how_to_enable_them() -> None:
    roots = [{"Id": "r-ab12", "PolicyTypes": [{"Type": "SERVICE_CONTROL_POLICY", "Status": "PENDING_ENABLE"}]}]
    (problem,) = readiness_problems(ORG, roots, ROLE)
    assert "enable-policy-type --root-id r-ab12 --policy-type SERVICE_CONTROL_POLICY" in problem


def test_a_reporter_role_outside_the_management_account_is_named_with_both_accounts() -> None:
    (problem,) = readiness_problems(ORG, ENABLED, "arn:aws:iam::999988887777:role/Reader")
    assert "999988887777" in problem
    assert "management account 111122223333" in problem
