"""The reporter role: the one principal every IAM report call and Organizations read goes through.

Only the two IAM report actions and the Organizations reads the collector needs. Generate is scoped
to the account's access-report resources; Get and the Organizations reads do not support
resource-level permissions for what we call, hence `*` (acknowledged in cdk-nag with that reason).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.nag import acknowledge, resource_finding
from lambdas.collector.names import COLLECTOR_STACK, REPORTER_ROLE
from lambdas.collector.notify.fixes import REPORT_JOB_READS

ORGANIZATIONS_READS = (
    # discover
    "organizations:DescribeOrganization",
    "organizations:ListRoots",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:ListAccountsForParent",
    # what IAM's report job reads on the caller's behalf (the alert's fix names the same list)
    *(action for action in REPORT_JOB_READS if action != "organizations:ListRoots"),
)
REPORT_ACTIONS = ("iam:GenerateOrganizationsAccessReport", "iam:GetOrganizationsAccessReport")


def reporter_statements(account: str, partition: str = "aws") -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            sid="GenerateReports",
            actions=["iam:GenerateOrganizationsAccessReport"],
            resources=[f"arn:{partition}:iam::{account}:access-report/*"],
        ),
        iam.PolicyStatement(sid="ReadReports", actions=["iam:GetOrganizationsAccessReport"], resources=["*"]),
        iam.PolicyStatement(sid="ReadOrganization", actions=list(ORGANIZATIONS_READS), resources=["*"]),
    ]


class ReporterRole(Construct):
    """The role, trusted by `trusted` principals (the collector's functions, or another account)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        trusted: iam.PrincipalBase,
        external_id: str | None = None,
        role_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        principal = (
            trusted.with_conditions({"StringEquals": {"sts:ExternalId": external_id}}) if external_id else trusted
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=principal,
            description="Generates and reads IAM Organizations access reports for the collector",
            max_session_duration=cdk.Duration.hours(1),
            inline_policies={
                "reports": iam.PolicyDocument(statements=reporter_statements(stack.account, stack.partition))
            },
        )
        acknowledge(
            self.role,
            {
                "IAM5[Resource::*]": "the Organizations List/Describe reads and "
                "iam:GetOrganizationsAccessReport have no resource-level permissions (Service Authorization "
                "Reference); the policy names each action, none with a wildcard",
                resource_finding(self, f"arn:{stack.partition}:iam::{stack.account}:access-report/*"): (
                    "GenerateOrganizationsAccessReport's resource is access-report/<entity path>; the paths are "
                    "the organization's roots, OUs and accounts discovered at run time"
                ),
            },
        )


class ReporterRoleStack(cdk.Stack):
    """The reporter role alone, for the management account when the collector runs in another account.

    Trusted by the collector account, with the ExternalId, and only for roles whose name CloudFormation
    derived from the collector stack's functions (`<collector stack>-Functions…`): another role in that
    account cannot use it even if its own policy allowed sts:AssumeRole.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        collector_account: str,
        external_id: str,
        collector_stack: str = COLLECTOR_STACK,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        functions = f"arn:{self.partition}:iam::{collector_account}:role/{collector_stack}-Functions*"
        reporter = ReporterRole(
            self,
            "Reporter",
            trusted=iam.AccountPrincipal(collector_account).with_conditions(
                {"ArnLike": {"aws:PrincipalArn": functions}}
            ),
            external_id=external_id,
            role_name=REPORTER_ROLE,
        )
        cdk.CfnOutput(self, "ReporterRoleArn", value=reporter.role.role_arn)
