"""SCP evaluation: which services survive the policies along a path."""

from __future__ import annotations

import json

import pytest

from iam_report_emulator.catalog import load_catalog
from iam_report_emulator.scp import MalformedPolicyError, accessible_services, narrow_to_policy
from iam_report_emulator.seed import policy_document

CATALOG = load_catalog()
FULL = policy_document("Allow", ["*"])
ALL = set(CATALOG.services)


def services(*levels: list[str]) -> set[str]:
    return set(accessible_services([tuple(level) for level in levels], CATALOG))


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
