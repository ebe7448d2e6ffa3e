"""The emulator's trust policies: who a role's trust admits on `sts:AssumeRole`, and STS's answer through moto."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from harness.clients import client
from iam_report_emulator.trust import AssumeRoleRequest, Caller, admits, policy_principal
from tests.conftest import NO_RETRIES

ACCOUNT, OTHER = "111122223333", "444455556666"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Reader"
FUNCTION_ROLE = f"arn:aws:iam::{OTHER}:role/Collector-FunctionsdiscoverroleAB12-XYZ"
SESSION = Caller(
    f"arn:aws:sts::{OTHER}:assumed-role/Collector-FunctionsdiscoverroleAB12-XYZ/discover",
    OTHER,
    FUNCTION_ROLE,
    "AssumedRole",
)
REQUEST = AssumeRoleRequest(ROLE, "org-access-report-run-1", "ext-1")


def trust(principal: Any, condition: dict[str, Any] | None = None, effect: str = "Allow") -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": effect, "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


@pytest.mark.parametrize(
    ("principal", "admitted"),
    [
        ("*", True),
        ({"AWS": "*"}, True),
        ({"AWS": OTHER}, True),
        ({"AWS": f"arn:aws:iam::{OTHER}:root"}, True),
        ({"AWS": [f"arn:aws:iam::{ACCOUNT}:root", FUNCTION_ROLE]}, True),
        ({"AWS": SESSION.arn}, True),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, False),
        ({"AWS": f"arn:aws:iam::{OTHER}:role/AnotherRole"}, False),
        ({"Service": "lambda.amazonaws.com"}, False),
    ],
    ids=["star", "aws-star", "account-id", "account-root", "one-of-a-list", "the-session", "another-account",
         "another-role", "a-service"],
)  # fmt: skip
def test_the_principal_names_the_caller_by_account_role_or_session(principal: Any, admitted: bool) -> None:
    assert admits(trust(principal), SESSION, REQUEST) is admitted


@pytest.mark.parametrize(
    ("condition", "external_id", "admitted"),
    [
        ({"StringEquals": {"sts:ExternalId": "ext-1"}}, "ext-1", True),
        ({"StringEquals": {"sts:ExternalId": "ext-1"}}, "ext-2", False),
        ({"StringEquals": {"sts:ExternalId": "ext-1"}}, None, False),
        ({"StringEquals": {"STS:externalid": ["ext-0", "ext-1"]}}, "ext-1", True),  # keys in any case, values OR
        ({"StringNotEquals": {"sts:ExternalId": "ext-1"}}, None, True),  # a missing key passes a negated test
        ({"StringEqualsIfExists": {"sts:ExternalId": "ext-1"}}, None, True),
        ({"Null": {"sts:ExternalId": "false"}}, None, False),
        ({"StringLike": {"sts:ExternalId": "ext-?"}}, "ext-7", True),
        ({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{OTHER}:role/Collector-Functions*"}}, None, True),
        ({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{OTHER}:role/Other-Functions*"}}, None, False),
        ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*"}}, None, False),  # part by part: six parts or none
        ({"StringEquals": {"aws:PrincipalAccount": OTHER, "sts:RoleSessionName": REQUEST.session_name}}, None, True),
        ({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}, None, False),  # unknown here: closed
    ],
)
def test_conditions_hold_as_iam_evaluates_them(
    condition: dict[str, Any], external_id: str | None, admitted: bool
) -> None:
    request = AssumeRoleRequest(ROLE, REQUEST.session_name, external_id)
    assert admits(trust({"AWS": OTHER}, condition), SESSION, request) is admitted


def test_an_explicit_deny_wins_and_a_statement_for_other_actions_does_not_count() -> None:
    allow, deny = trust({"AWS": OTHER}), trust({"AWS": FUNCTION_ROLE}, effect="Deny")
    assert not admits({"Statement": [*allow["Statement"], *deny["Statement"]]}, SESSION, REQUEST)
    tag_only = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:TagSession"}]}
    assert not admits(tag_only, SESSION, REQUEST)
    assert admits({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "sts:*"}}, SESSION, REQUEST)
    assert not admits({"Statement": []}, SESSION, REQUEST)


def test_a_caller_is_named_in_policies_by_its_role_or_its_iam_arn() -> None:
    assert policy_principal(SESSION.arn) == f"arn:aws:iam::{OTHER}:role/Collector-FunctionsdiscoverroleAB12-XYZ"
    assert policy_principal("arn:aws:sts::123456789012:user/moto") == "arn:aws:iam::123456789012:user/moto"
    assert policy_principal("arn:aws:iam::123456789012:user/alice") == "arn:aws:iam::123456789012:user/alice"


# -- through moto ------------------------------------------------------------------------------


def assume(sts: Any, role: str, external_id: str | None = None) -> str:
    extra = {"ExternalId": external_id} if external_id else {}
    return str(sts.assume_role(RoleArn=role, RoleSessionName="unit-test", **extra)["AssumedRoleUser"]["Arn"])


def test_sts_refuses_a_caller_the_trust_does_not_admit_with_its_words_and_status(aws: None) -> None:
    iam, sts = client("iam"), client("sts", config=NO_RETRIES)
    caller = sts.get_caller_identity()["Arn"]  # moto's default principal for credentials it did not issue
    account = caller.split(":")[4]
    role = f"arn:aws:iam::{account}:role/Reader"
    condition = {"StringEquals": {"sts:ExternalId": "ext-1"}}
    iam.create_role(RoleName="Reader", AssumeRolePolicyDocument=json.dumps(trust({"AWS": account}, condition)))
    assert assume(sts, role, "ext-1") == f"arn:aws:sts::{account}:assumed-role/Reader/unit-test"
    with pytest.raises(ClientError) as refused:
        assume(sts, role, "ext-2")
    error = refused.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert error["Error"]["Message"] == (
        f"User: {policy_principal(caller)} is not authorized to perform: sts:AssumeRole on resource: {role}"
    )


def test_a_session_is_admitted_by_its_roles_arn_and_a_role_moto_does_not_hold_by_anyone(aws: None) -> None:
    iam, sts = client("iam"), client("sts", config=NO_RETRIES)
    account = sts.get_caller_identity()["Account"]
    # A role moto does not hold: assumed as moto always did (a test may act as a role it never made)
    function_role = f"arn:aws:iam::{account}:role/Collector-Functionsdiscoverrole"
    credentials = sts.assume_role(RoleArn=function_role, RoleSessionName="discover")["Credentials"]
    as_function = client("sts", config=NO_RETRIES, credentials=credentials)
    iam.create_role(RoleName="Reader", AssumeRolePolicyDocument=json.dumps(trust({"AWS": function_role})))
    assert assume(as_function, f"arn:aws:iam::{account}:role/Reader").endswith(":assumed-role/Reader/unit-test")
    with pytest.raises(ClientError, match="AccessDenied"):
        assume(sts, f"arn:aws:iam::{account}:role/Reader")  # the default principal is not that role
