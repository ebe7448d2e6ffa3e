"""The learned limits: what IAM has admitted (jobs in progress) and how fast it may be called, one
DynamoDB item per organization, shared by every lane of a run and kept for the next runs
(`lambdas.collector.collect.limits`)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from lambdas.collector.collect.limits import KEY_ATTRIBUTE


class Limits(Construct):
    """On-demand (a few requests per report job), encrypted, with point-in-time recovery. Lost, it is
    learned again from one job at a time: the stack may delete it with itself."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=KEY_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )

    def grant_learn(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read the limits and write what was learned (a conditional put of the whole item)."""
        return self.table.grant(grantee, "dynamodb:GetItem", "dynamodb:PutItem")
