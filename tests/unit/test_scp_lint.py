"""The tests' SCP linter: clean on the generated shape, and each planted defect reported as what it is."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.scp_lint import catalog_namespaces, lint_scp, parliament_issues, scp_size

BREAK_GLASS = {"ArnNotLike": {"aws:PrincipalARN": ["arn:aws:iam::*:role/BreakGlass"]}}
WHERE = "Statement[0] DenyUnusedServices"
# A catalog service parliament 1.6.4 does not know: Amazon Elastic VMware Service.
NEWER_SERVICE = "evs"


def scp(*, version: str | None = "2012-10-17", **changes: Any) -> str:
    """The generated SCP shape, minified, with statement elements changed (None: left out)."""
    statement = {
        "Sid": "DenyUnusedServices",
        "Effect": "Deny",
        "Action": ["a4b:*", "gamelift:*"],
        "Resource": "*",
        "Condition": BREAK_GLASS,
    } | changes
    document: dict[str, Any] = {"Statement": [{key: value for key, value in statement.items() if value is not None}]}
    if version is not None:
        document = {"Version": version} | document
    return json.dumps(document, separators=(",", ":"))


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="with-condition"),
        pytest.param({"Condition": None}, id="without-condition"),
        pytest.param({"Action": "gamelift:*"}, id="single-string-action"),
        pytest.param(
            {"Condition": {"ArnNotLikeIfExists": {"aws:PrincipalARN": "arn:aws:iam::*:role/A"}}}, id="if-exists"
        ),
    ],
)
def test_the_generated_shape_is_clean(changes: dict[str, Any]) -> None:
    assert lint_scp(scp(**changes)) == []


def test_every_catalog_service_may_be_denied() -> None:
    assert lint_scp(scp(Action=[f"{namespace}:*" for namespace in sorted(catalog_namespaces())])) == []


def test_a_catalog_service_parliament_does_not_know_is_not_reported() -> None:
    text = scp(Action=[f"{NEWER_SERVICE}:*", "s3:*"])
    assert parliament_issues(text) == [("UNKNOWN_PREFIX", f"Unknown prefix {NEWER_SERVICE}")]  # what the filter is for
    assert lint_scp(text) == []


def test_bad_json() -> None:
    text = scp()[:-3]  # cut inside the closing "}]}"
    assert lint_scp(text) == [
        f'parliament MALFORMED_JSON (CRITICAL): json parsing error: Expected "," [line=1;col={len(text) + 1}]'
        f" (column {len(text) + 1})",
        f"not valid JSON: Expecting ',' delimiter: line 1 column {len(text) + 1} (char {len(text)})",
    ]


def test_json_parliament_tolerates_is_still_bad_json() -> None:
    assert lint_scp('{"Version":"2012-10-17","Statement":[],}') == [
        "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 40 (char 39)"
    ]


def test_missing_version() -> None:
    assert lint_scp(scp(version=None)) == [
        "parliament NO_VERSION (LOW): Policy does not contain a Version element",
        'Version must be "2012-10-17" but is missing',
    ]


def test_deny_of_star() -> None:
    assert lint_scp(scp(Action="*")) == [f'{WHERE}: a Deny of "*" denies every action']


def test_deny_with_not_action() -> None:
    assert lint_scp(scp(Action=None, NotAction=["s3:*"])) == [
        f"{WHERE}: a Deny with NotAction denies every action it does not list"
    ]


def test_deny_of_less_than_a_whole_service_or_a_wildcard_service() -> None:
    assert lint_scp(scp(Action=["s3:Get*", "s3*:*"])) == [
        "parliament UNKNOWN_PREFIX (LOW): Unknown prefix s3* at 's3*:*' (column 102)",
        f'{WHERE}: Deny of "s3:Get*": not a whole service (service:*)',
        f'{WHERE}: Deny of "s3*:*": a wildcard service can deny every service',
    ]


def test_unknown_prefix() -> None:
    assert lint_scp(scp(Action=["notaservice:*", "s3:*"])) == [
        "parliament UNKNOWN_PREFIX (LOW): Unknown prefix notaservice at 'notaservice:*' (column 92)",
        f'{WHERE}: Deny of "notaservice:*": "notaservice" is not a service namespace in the catalog',
    ]


def test_principal() -> None:
    assert lint_scp(scp(Principal={"AWS": "*"})) == [f"{WHERE}: has Principal; an SCP cannot name principals"]


def test_resource_other_than_star() -> None:
    assert lint_scp(scp(Resource="arn:aws:s3:::bucket")) == [
        f'{WHERE}: Resource must be "*", not "arn:aws:s3:::bucket"'
    ]


def test_effect() -> None:
    assert lint_scp(scp(Effect="Denied")) == [
        "parliament MALFORMED (HIGH): Unknown Effect used. Effect must be either Allow or Deny at 'Denied' (column 75)",
        f'{WHERE}: Effect must be Deny or Allow, not "Denied"',
    ]


def test_condition_exempts_principals_by_arn_only() -> None:
    assert lint_scp(scp(Condition={"StringNotLike": {"aws:PrincipalARN": "arn:aws:iam::*:role/A"}})) == [
        f'{WHERE}: Condition operator "StringNotLike" is not allowed (only ArnNotLike or ArnNotLikeIfExists)'
    ]
    assert lint_scp(scp(Condition={"ArnNotLike": {"aws:SourceArn": "arn:aws:iam::*:role/A"}})) == [
        f'{WHERE}: Condition key "aws:SourceArn" under ArnNotLike is not allowed (only aws:PrincipalARN)'
    ]


def test_a_statement_with_a_service_parliament_does_not_know_still_has_its_condition_checked() -> None:
    # Parliament stops at the unknown prefix; the second pass, without it, finds the non-ARN value.
    not_an_arn = {"ArnNotLike": {"aws:PrincipalARN": "BreakGlass"}}
    assert lint_scp(scp(Action=[f"{NEWER_SERVICE}:*", "s3:*"], Condition=not_an_arn)) == [
        "parliament MISMATCHED_TYPE (MEDIUM): Type mismatch: aws:PrincipalARN requires a value of type Arn"
        f" but given ['BreakGlass'] (with {NEWER_SERVICE} left out)"
    ]


def test_size_is_the_utf8_byte_length() -> None:
    text = scp()
    assert scp_size(text) == len(text) == 213
    assert scp_size('{"Sid":"é"}') == 12
