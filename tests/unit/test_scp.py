"""SCP evaluation: which services survive the policies along a path."""

from __future__ import annotations

import json

import pytest

from iam_report_emulator.catalog import load_catalog
from iam_report_emulator.scp import MalformedPolicyError, PrincipalExemptDenies, accessible_services, narrow_to_policy
from iam_report_emulator.seed import policy_document
from iam_report_emulator.settings import ReportSettings

CATALOG = load_catalog()
FULL = policy_document("Allow", ["*"])
ALL = set(CATALOG.services)


def services(*levels: list[str], principal_exempt_denies: PrincipalExemptDenies = "ignored") -> set[str]:
    layers = [tuple(level) for level in levels]
    return set(accessible_services(layers, CATALOG, principal_exempt_denies=principal_exempt_denies))


def conditional_deny(actions: list[str], condition: dict[str, object]) -> str:
    statement = {"Effect": "Deny", "Action": actions, "Resource": "*", "Condition": condition}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


BREAK_GLASS_ROLE = "arn:aws:iam::*:role/BreakGlass"
BREAK_GLASS_SERVICES = {"gamelift", "a4b"}
# AWS's recommended form: deny everyone but a break-glass role.
BREAK_GLASS_DENY = conditional_deny(["gamelift:*", "a4b:*"], {"ArnNotLike": {"aws:PrincipalARN": [BREAK_GLASS_ROLE]}})
REGION_DENY = conditional_deny(["gamelift:*", "a4b:*"], {"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1"]}})
READINGS: list[PrincipalExemptDenies] = ["ignored", "applied"]


def test_the_catalog_is_the_real_iam_service_list() -> None:
    assert len(CATALOG.services) > 400
    assert CATALOG.name_of("s3") == "Amazon S3"
    assert "getobject" in CATALOG.services["s3"].actions


def test_full_aws_access_allows_every_service() -> None:
    assert services([FULL], [FULL]) == ALL


def test_levels_intersect_an_allow_list_below_full_access() -> None:
    allow = policy_document("Allow", ["s3:*", "dynamodb:GetItem", "EC2:Describe*"])
    assert services([FULL], [allow]) == {"s3", "dynamodb", "ec2"}


def test_an_entity_without_any_allow_gets_nothing() -> None:
    assert services([FULL], []) == set()


def test_a_service_deny_removes_it_and_an_action_deny_does_not() -> None:
    deny = policy_document("Deny", ["gamelift:*", "iam:CreateUser", "iot*:*"])
    result = services([FULL, deny], [FULL])
    assert "gamelift" not in result
    assert "iam" in result
    assert not {ns for ns in result if ns.startswith("iot")}
    assert {ns for ns in ALL if ns.startswith("iot")}


def test_denying_every_action_of_a_service_removes_it() -> None:
    deny = policy_document("Deny", [f"sqs:{a}" for a in CATALOG.services["sqs"].actions])
    assert "sqs" not in services([FULL, deny])


def test_a_conditional_deny_is_not_taken_to_remove_anything() -> None:
    statement = {
        "Effect": "Deny",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    conditional = json.dumps({"Version": "2012-10-17", "Statement": statement})
    assert "s3" in services([FULL, conditional])


def test_not_action_allows_everything_else() -> None:
    not_action = json.dumps({"Statement": [{"Effect": "Allow", "NotAction": ["s3:*"], "Resource": "*"}]})
    assert services([not_action]) == ALL - {"s3"}


def test_a_policy_id_narrows_to_what_that_policy_allows() -> None:
    allow = policy_document("Allow", ["s3:*", "sqs:*"])
    accessible = accessible_services([(FULL,)], CATALOG)
    assert set(narrow_to_policy(accessible, allow, CATALOG)) == {"s3", "sqs"}
    deny_only = policy_document("Deny", ["s3:*"])
    assert narrow_to_policy(accessible, deny_only, CATALOG) == {}


def test_malformed_content_is_a_named_error() -> None:
    with pytest.raises(MalformedPolicyError, match="not JSON"):
        services(["{not json"])


# -- a Deny whose Condition only exempts principals (break-glass): two readings ------------------------


def test_by_default_a_break_glass_deny_leaves_the_services_it_names() -> None:
    # Given full access and a Deny of two services to everyone but a break-glass role
    # When the default reading ("ignored") evaluates it
    result = services([FULL, BREAK_GLASS_DENY])
    # Then it removes nothing, as any conditional Deny
    assert result == ALL
    assert services([FULL, BREAK_GLASS_DENY], principal_exempt_denies="ignored") == ALL
    assert ReportSettings().principal_exempt_denies == "ignored"


def test_applied_a_break_glass_deny_removes_exactly_the_services_it_names() -> None:
    # Given the same Deny, read as applying to every principal but the exempted ones
    result = services([FULL, BREAK_GLASS_DENY], principal_exempt_denies="applied")
    # Then exactly its two services are gone
    assert BREAK_GLASS_SERVICES <= ALL
    assert result == ALL - BREAK_GLASS_SERVICES


@pytest.mark.parametrize(
    "operator",
    [
        "ArnNotLike",
        "ArnNotLikeIfExists",
        "ArnNotEquals",
        "StringNotLike",
        "StringNotLikeIfExists",
        "StringNotEquals",
    ],
)
@pytest.mark.parametrize("key", ["aws:PrincipalARN", "aws:PrincipalArn", "AWS:principalarn"])
def test_every_exempting_operator_on_the_principal_arn_in_any_case_is_a_break_glass_deny(
    operator: str, key: str
) -> None:
    deny = conditional_deny(["gamelift:*", "a4b:*"], {operator: {key: BREAK_GLASS_ROLE}})
    assert services([FULL, deny], principal_exempt_denies="ignored") == ALL
    assert services([FULL, deny], principal_exempt_denies="applied") == ALL - BREAK_GLASS_SERVICES


def test_several_exempting_operators_together_are_still_a_break_glass_deny() -> None:
    deny = conditional_deny(
        ["gamelift:*", "a4b:*"],
        {
            "ArnNotLike": {"aws:PrincipalARN": [BREAK_GLASS_ROLE]},
            "StringNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/Admin"},
        },
    )
    assert services([FULL, deny], principal_exempt_denies="applied") == ALL - BREAK_GLASS_SERVICES


@pytest.mark.parametrize("reading", READINGS)
def test_a_region_conditional_deny_removes_nothing_under_either_reading(reading: PrincipalExemptDenies) -> None:
    assert services([FULL, REGION_DENY], principal_exempt_denies=reading) == ALL


@pytest.mark.parametrize("reading", READINGS)
def test_a_principal_exemption_mixed_with_another_condition_removes_nothing_under_either_reading(
    reading: PrincipalExemptDenies,
) -> None:
    # Given an exemption of the break-glass role AND a condition on the region, under one operator or two
    same_operator = conditional_deny(
        ["gamelift:*", "a4b:*"],
        {"StringNotLike": {"aws:PrincipalARN": BREAK_GLASS_ROLE, "aws:RequestedRegion": "eu-*"}},
    )
    two_operators = conditional_deny(
        ["gamelift:*", "a4b:*"],
        {
            "ArnNotLike": {"aws:PrincipalARN": [BREAK_GLASS_ROLE]},
            "StringEquals": {"aws:ResourceTag/team": "games"},
        },
    )
    # Then the Deny may not apply, so it removes nothing
    assert services([FULL, same_operator], principal_exempt_denies=reading) == ALL
    assert services([FULL, two_operators], principal_exempt_denies=reading) == ALL


@pytest.mark.parametrize("reading", READINGS)
def test_a_non_negated_operator_on_the_principal_arn_is_not_an_exemption(reading: PrincipalExemptDenies) -> None:
    # ArnLike names the principals the Deny applies to (a few), not the ones it spares
    deny = conditional_deny(["gamelift:*"], {"ArnLike": {"aws:PrincipalARN": ["arn:aws:iam::*:role/Games"]}})
    assert services([FULL, deny], principal_exempt_denies=reading) == ALL


def test_applied_a_break_glass_deny_in_the_policy_of_a_policy_id_narrows_it_too() -> None:
    accessible = accessible_services([(FULL,)], CATALOG)
    policy = json.dumps(
        {
            "Statement": [
                {"Effect": "Allow", "Action": ["gamelift:*", "a4b:*", "s3:*"], "Resource": "*"},
                json.loads(BREAK_GLASS_DENY)["Statement"][0],
            ]
        }
    )
    assert set(narrow_to_policy(accessible, policy, CATALOG)) == {"gamelift", "a4b", "s3"}
    assert set(narrow_to_policy(accessible, policy, CATALOG, principal_exempt_denies="applied")) == {"s3"}


def test_the_reading_setting_rejects_an_unknown_value() -> None:
    with pytest.raises(
        ValueError, match="principal_exempt_denies must be one of 'ignored', 'applied', got 'sometimes'"
    ):
        ReportSettings(principal_exempt_denies="sometimes")  # type: ignore[arg-type]
    assert ReportSettings(principal_exempt_denies="applied").principal_exempt_denies == "applied"
