"""The stack's customer-managed KMS keys (the alert topic's, the log groups'), made alike: rotated yearly,
and no grant on them but one an AWS service makes for its own use (Control Tower's CT.KMS.PR.3).

A key's default policy lets the account's IAM policies grant `kms:*`; a grant would let its grantee use
the key outside both the key policy and IAM, and nothing here needs one: SNS, CloudWatch alarms,
EventBridge and CloudWatch Logs use these keys through their key-policy statements, the functions
through IAM. The deny statement removes that path for every principal but AWS services.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

DENY_GRANTS_SID = "DenyGrantsExceptByAwsServicesForAwsResources"


def customer_managed_key(scope: Construct, id: str, *, description: str) -> kms.Key:
    """A symmetric key with yearly rotation whose policy denies `kms:CreateGrant` but by AWS services."""
    key = kms.Key(scope, id, description=description, enable_key_rotation=True)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=DENY_GRANTS_SID,
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["kms:CreateGrant"],
            resources=["*"],  # in a key policy "*" means this key
            conditions={"BoolIfExists": {"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"}},
        )
    )
    return key
