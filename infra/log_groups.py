"""Log groups encrypted with the stack's logs key: one customer-managed KMS key (`infra.keys`) for the
functions' log groups and the state machine's execution log, which holds execution data (Control Tower's
CT.CLOUDWATCH.PR.3).

The key's policy admits CloudWatch Logs of the stack's region (AWS's documented statement for log group
encryption), only for log groups of the stack's account and region (the encryption context condition).
Readers of the logs need no key permission: CloudWatch Logs decrypts for them.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.keys import customer_managed_key
from infra.nag import acknowledge_guard

KEY_ID = "LogsKey"
# CT.CLOUDWATCH.PR.2 asks for at least a year of retention.
A_YEAR = 365


def logs_key(scope: Construct) -> kms.Key:
    """The stack's logs key, created with the first log group that asks for it."""
    stack = cdk.Stack.of(scope)
    existing = stack.node.try_find_child(KEY_ID)
    if isinstance(existing, kms.Key):
        return existing
    key = customer_managed_key(
        stack, KEY_ID, description="Encrypts the org access report collector's CloudWatch log groups"
    )
    log_groups_here = stack.format_arn(
        service="logs", resource="log-group", resource_name="*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogsOfThisAccountAndRegion",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],  # in a key policy "*" means this key
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups_here}},
        )
    )
    return key


def encrypted_log_group(scope: Construct, id: str, *, retention: logs.RetentionDays, **props: Any) -> logs.LogGroup:
    """A log group encrypted with the stack's logs key, kept `retention` (the `log_retention_days` setting)."""
    log_group = logs.LogGroup(scope, id, encryption_key=logs_key(scope), retention=retention, **props)
    resource = log_group.node.default_child
    days = resource.retention_in_days if isinstance(resource, logs.CfnLogGroup) else None  # None: forever
    if days is not None and days < A_YEAR:
        acknowledge_guard(
            log_group,
            {
                "cloudwatch_log_group_retention_period_check": "kept for the `log_retention_days` setting, "
                f"shorter than {A_YEAR} days: these are operational logs; a run's record is its snapshot in S3, "
                "and an operator whose policy asks for a year sets the setting to 365 or more"
            },
        )
    return log_group
