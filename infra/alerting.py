"""The alert topic: SNS encrypted with a customer-managed KMS key, TLS only, e-mail subscribers.

The AWS-managed `alias/aws/sns` key cannot be used by CloudWatch alarms or EventBridge rules (its
policy cannot be changed to admit them), so the topic gets its own key whose policy lets those two
services encrypt messages for it. Creating a topic policy (for TLS) replaces SNS's default policy,
so alarms and rules of this account are allowed to publish explicitly. No one may create a grant on
the key but AWS services (`infra.keys`): nothing here uses grants.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.keys import customer_managed_key
from infra.nag import acknowledge

# Services that publish to the topic on the stack's behalf: alarms, and EventBridge rules (e.g. on a
# failed execution of the state machine).
PUBLISHING_SERVICES = ("cloudwatch.amazonaws.com", "events.amazonaws.com")


class Alerting(Construct):
    """The SNS topic the collector's alert and its alarms publish to."""

    def __init__(self, scope: Construct, id: str, *, emails: list[str]) -> None:
        """`emails` are checked where they are declared (`lambdas.collector.settings.Deployment`)."""
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)

        self.key = customer_managed_key(
            self,
            "TopicKey",
            description="Encrypts the org access report alert topic; usable by CloudWatch alarms and EventBridge",
        )
        # What SNS asks of the publisher's key when a service publishes to an encrypted topic.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAlarmsAndRulesToPublishToTheEncryptedTopic",
                principals=[iam.ServicePrincipal(service) for service in PUBLISHING_SERVICES],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy "*" means this key
            )
        )

        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="Org access report",
            master_key=self.key,
            enforce_ssl=True,
        )
        alarms_of_this_account = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name="*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"ArnLike": {"aws:SourceArn": alarms_of_this_account}},
            )
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowRulesOfThisAccount",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

    def grant_publish(self, role: iam.IRole) -> None:
        """sns:Publish on the topic, with the key use SNS needs from a publisher to an encrypted topic."""
        self.topic.grant_publish(role)
        self.key.grant(role, "kms:Decrypt", "kms:GenerateDataKey*")  # idempotent if CDK already granted it
        acknowledge(
            role,
            {
                "IAM5[Action::kms:GenerateDataKey*]": "the topic's own key only: SNS needs GenerateDataKey "
                "(the * covers its WithoutPlaintext variant) to publish to a KMS-encrypted topic"
            },
        )
