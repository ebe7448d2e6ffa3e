"""Scanner acknowledgements, for cdk-nag and for cfn-guard's Control Tower rules, both CDK validation plugins.

cdk-nag 3 reads CDK's `Validations.acknowledge` metadata on a resource and its ancestors, and matches
the finding id exactly: `AwsSolutions-IAM5[Resource::<DataBucket1234.Arn>/runs/*]`. `resource_finding`
builds that text from the same CDK value the policy was built from, so an acknowledgement names the
one resource it accepts, and a new wildcard elsewhere is still reported.

The Control Tower rules (`cdklabs.cdk-validator-cfnguard`, run in tests/infra) name a finding by the
guard rule, `s3_bucket_object_lock_enabled_check`; `acknowledge_guard` writes the same kind of CDK
acknowledgement under that plugin's name. CDK matches it on the construct and below, so each one is
put on the one construct whose resource it accepts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from constructs import IConstruct

PACK = "AwsSolutions"
GUARD = "cdk-validator-cfnguard"  # the plugin's name, which CDK uses as its findings' namespace


def acknowledge(scope: IConstruct, reasons: Mapping[str, str]) -> None:
    """Acknowledge `{rule: reason}` (rules as `IAM5[Action::s3:List*]`, `L1`, ...) on `scope` and below."""
    for rule, reason in reasons.items():
        cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"{PACK}::{PACK}-{rule}", reason=reason))


def acknowledge_guard(scope: IConstruct, reasons: Mapping[str, str]) -> None:
    """Acknowledge `{guard rule: reason}` (`sqs_dlq_check`, ...) on `scope` and below."""
    for rule, reason in reasons.items():
        cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"{GUARD}::{rule}", reason=reason))


def resource_finding(scope: IConstruct, arn: str) -> str:
    """The IAM5 rule id cdk-nag reports for the wildcard resource `arn` (a string that may hold tokens)."""
    return f"IAM5[Resource::{_flatten(cdk.Stack.of(scope).resolve(arn))}]"


def _flatten(node: Any) -> str:
    """cdk-nag's flattenCfnReference: Ref → <X>, Fn::GetAtt → <X.Attr>, Fn::Join joined, else JSON."""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict) and "Fn::Join" in node:
        delimiter, items = node["Fn::Join"]
        return str(delimiter).join(_flatten(item) for item in items)
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        resource, attribute = node["Fn::GetAtt"]
        return f"<{_flatten(resource)}.{_flatten(attribute)}>"
    if isinstance(node, dict) and "Ref" in node:
        return f"<{_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))
